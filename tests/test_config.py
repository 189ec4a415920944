"""Config loading, validation messages, overrides and sweeps (unit level)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpctriton.config import config_from_data, json_schema, load_config
from hpctriton.errors import ConfigError

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

MINIMAL = """\
server:
  host: triton.example.org
  http_port: 8000
models: [simple]
container: {runtime: none}
"""


def write(tmp_path: Path, text: str, name: str = "hpctriton.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["asgc-slurm.yaml", "asgc-dicos.yaml", "local.yaml"])
def test_examples_load(name: str) -> None:
    cfg = load_config(EXAMPLES / name)
    assert cfg.models
    assert cfg.clusters


def test_defaults_when_checks_absent(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.check_names == ["health", "metadata", "keepalive", "infer", "statistics", "metrics"]


def test_check_entries_are_names_or_one_key_maps(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL + "checks: [health, {keepalive: {period_s: 30}}]\n"))
    assert cfg.check_names == ["health", "keepalive"]
    assert cfg.checks[1].options.period_s == 30.0


def test_unknown_top_level_key_names_field_line_and_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "modles: [x]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert f"{path}:6" in text
    assert "modles" in text
    assert "valid keys" in text and "models" in text and "server" in text


def test_unknown_nested_key_lists_valid_keys(tmp_path: Path) -> None:
    text = MINIMAL + "clusters:\n  c:\n    backend: slurm\n    slurm: {parttion: x}\n"
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert "clusters.c.slurm.parttion" in str(err.value)
    assert "partition" in str(err.value)
    assert err.value.line == 9


def test_unknown_check_option_names_the_check(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "checks:\n  - {keepalive: {period: 3}}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "checks[0].keepalive.period" in str(err.value)
    assert "period_s" in str(err.value)


@pytest.mark.parametrize(
    ("snippet", "field", "words"),
    [
        ("server: {host: h, http_port: 70000}\nmodels: [m]\n", "server.http_port",
         "between 1 and 65535"),
        ("server: {host: h, http_port: eighty}\nmodels: [m]\n", "server.http_port", "integer"),
        ("models: [m]\n", "server", "required"),
        ("server: {host: h, http_port: 1}\nmodels: []\n", "models", "at least 1"),
        ("server: {host: h, http_port: 1}\nmodels: [m]\nchecks: [helth]\n", "checks[0]",
         "unknown check 'helth'"),
        ("server: {host: h, http_port: 1}\nmodels: [m]\nclusters: {a: {backend: pbs}}\n",
         "clusters.a.backend", "valid backends: slurm, dicos, local"),
        ("server: {host: h, http_port: 1}\nmodels: [m]\nsweep: {container.image: [a]}\n",
         "sweep.container.image", "can vary per task"),
        ("server: {host: h, http_port: 1}\nmodels: [m]\nsweep: {server.http_port: [1, 0]}\n",
         "server.http_port", "sweep point"),
        ("server: {host: h, http_port: 1}\nmodels: [m]\n"
         "clusters: {a: {backend: slurm, slurm: {time: soon}}}\n",
         "clusters.a.slurm.time", "not a Slurm time"),
        ("server: {host: h, http_port: 1}\nmodels: [m]\n"
         "clusters: {a: {backend: slurm, prologue: [\"a\\nb\"]}}\n",
         "clusters.a.prologue", "one shell line"),
    ],
)
def test_bad_values_name_the_field(tmp_path: Path, snippet: str, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, snippet))
    assert err.value.field == field
    assert words in str(err.value)
    assert err.value.exit_code == 2


def test_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "server:\n  host: [unclosed\nmodels: [m]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "invalid YAML" in str(err.value)
    assert err.value.line is not None


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="duplicate key"):
        load_config(write(tmp_path, MINIMAL + "models: [other]\n"))


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="empty"):
        load_config(write(tmp_path, "# nothing\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_set_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    cfg = load_config(path, overrides=["server.grpc_port=30457", "models=[a, b]"])
    assert cfg.server.grpc_port == 30457
    assert cfg.models == ["a", "b"]
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides=["server.http_port=0"])
    assert "between 1 and 65535" in str(err.value)
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, overrides=["server.http_port"])


def test_set_creates_missing_parents(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL),
                      overrides=["clusters.x.backend=slurm", "clusters.x.slurm.partition=gpu"])
    assert cfg.clusters["x"].slurm.partition == "gpu"


def test_sweep_is_a_cartesian_product_first_key_slowest() -> None:
    cfg = config_from_data({
        "server": {"host": "h", "http_port": 1}, "models": ["m"],
        "sweep": {"server.host": ["a", "b"], "models": [["x"], ["y"], ["z"]]},
    })
    points = cfg.points()
    assert len(points) == 6
    assert [(c.server.host, c.models[0]) for _, c in points] == [
        ("a", "x"), ("a", "y"), ("a", "z"), ("b", "x"), ("b", "y"), ("b", "z")]
    assert points[4][0] == {"server.host": "b", "models": ["y"]}


def test_to_data_round_trips() -> None:
    cfg = load_config(EXAMPLES / "asgc-slurm.yaml")
    again = config_from_data(cfg.to_data(), base_dir=cfg.base_dir)
    assert again == cfg


def test_cluster_choice() -> None:
    cfg = config_from_data({"server": {"host": "h", "http_port": 1}, "models": ["m"],
                            "clusters": {"a": {"backend": "slurm"}, "b": {"backend": "dicos"}}})
    with pytest.raises(ConfigError, match="several clusters"):
        cfg.cluster()
    assert cfg.cluster("b")[1].backend == "dicos"
    with pytest.raises(ConfigError, match="unknown cluster 'c'"):
        cfg.cluster("c")


def test_json_schema_covers_checks_and_clusters() -> None:
    schema = json_schema()
    text = json.dumps(schema)
    assert "keepalive_time_s" in text
    assert "require_ram" in text
    assert schema["additionalProperties"] is False
    assert "base_dir" not in schema["properties"]


LOOP = MINIMAL + """\
clusters:
  loop: {backend: slurm, host: login, python: /usr/bin/python3}
"""


@pytest.mark.parametrize(("override", "field", "words"), [
    ('clusters.loop.slurm.qos="\\ud83d"', "clusters.loop.slurm.qos", "lone surrogate (U+D83D)"),
    ('clusters.loop.env.TOKEN="abc\\r"', "clusters.loop.env.TOKEN", "carriage return"),
    ('container.binds=["/data\\r"]', "container.binds[0]", "carriage return"),
    ('clusters={"lo\\rop": {backend: local}}', "clusters.lo\\u000dop", "key holds a carriage"),
    ('container.python="python3\\r"', "container.python", "carriage return"),
    ('container.options=["--cleanenv\\r"]', "container.options[0]", "carriage return"),
    ('clusters.loop.workdir="runs\\0x"', "clusters.loop.workdir", "NUL"),
    ('server.headers.Authorization="Bearer ${T}\\n"', "server.headers.Authorization",
     "line break"),
    ('server.headers.x-bad="ab\u00e9\u2603"', "server.headers.x-bad", "only visible ASCII"),
    ('server.headers.x-bad="a\\x7fb"', "server.headers.x-bad", "only visible ASCII"),
    ('server={host: h, http_port: 1, headers: {x-bad: "ab\u00e9"}}', "server.headers.x-bad",
     "only visible ASCII"),
    ('sweep={server.headers.x-bad: [ok, "ab\u00e9"]}', "sweep.server.headers.x-bad[1]",
     "only visible ASCII"),
    ('sweep={server.headers.x-bad: ["a\\nb"]}', "sweep.server.headers.x-bad[0]",
     "line break"),
])
def test_values_that_cannot_reach_a_script_are_refused_at_config_time_naming_the_field(
        tmp_path: Path, override: str, field: str, words: str) -> None:
    """Issue 18: these rendered (or crashed with UnicodeEncodeError) and sbatch refused
    the script only after staging. The message is printable whatever the value."""
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, LOOP), overrides=[override])
    assert err.value.field == field and words in str(err.value)
    str(err.value).encode("utf-8")  # no lone surrogate in the message itself


def test_a_lone_surrogate_from_set_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hpctriton.cli import cli

    result = CliRunner().invoke(cli, ["render", "-c", str(write(tmp_path, LOOP)), "--set",
                                      'clusters.loop.slurm.qos="\\ud83d"', "-o",
                                      str(tmp_path / "b")])
    assert result.exit_code == 2, result.output
    assert "clusters.loop.slurm.qos" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "b").exists()


def test_line_breaks_stay_allowed_in_env_values(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, LOOP), overrides=['clusters.loop.env.PEM="a\\nb"'])
    assert cfg.clusters["loop"].env == {"PEM": "a\nb"}


@pytest.mark.parametrize("override", [
    "server.headers.Authorization=12345678",
    'server.headers.Authorization="Bearer SECRET123\\n"',
    'sweep={server.headers.Authorization: ["Bearer SECRET123", 12345678]}',
    "server.headers=[Bearer SECRET123]",
    'server.headers.Authorization="Bearer SECRET123\u00e9"',
    'sweep={server.headers.Authorization: ["Bearer SECRET123\u2603"]}',
])
def test_config_errors_never_show_a_header_value(tmp_path: Path, override: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), overrides=[override])
    message = str(err.value)
    assert "server.headers" in message
    assert "SECRET123" not in message and "12345678" not in message, message
    shown = ("\u00e9", "\u2603", "u00e9", "U+00E9", "u2603", "U+2603")
    assert not any(c in message for c in shown), message


def test_header_values_of_visible_ascii_space_and_tab_are_taken(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, MINIMAL),
                      overrides=['server.headers.x-ok="Bearer a\\tb ~!${T}"'])
    assert cfg.server.headers == {"x-ok": "Bearer a\tb ~!${T}"}


# ------------------------------------------------------- issue 16.5: errors say where

RANGE = """\
server:
  host: h
  http_port: 99999
models: [m]
container: {runtime: none}
"""


def test_a_model_level_check_names_the_field_line_and_full_path(tmp_path: Path) -> None:
    """Was ``range.yaml:1: server: http_port must be …`` (the line of ``server:``)."""
    path = write(tmp_path, RANGE, "range.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}:3: server.http_port: must be between 1 and 65535, "
                              "got 99999")
    assert (err.value.field, err.value.line) == ("server.http_port", 3)


@pytest.mark.parametrize(("item", "field", "words"), [
    ("server.http_port=abc", "server.http_port", "valid integer"),
    ("server.htpp_port=5", "server.htpp_port", "unknown key; valid keys: host, http_port"),
    ("server.http_port=0", "server.http_port", "between 1 and 65535"),
    ("server={host: h}", "server", "give http_port or grpc_port"),
    ("sweep.probe.retries=[1]", "sweep.probe", "valid list"),
])
def test_an_override_error_names_the_set_argument_not_a_file_line(
        tmp_path: Path, item: str, field: str, words: str) -> None:
    """Was ``ok.yaml:3: server.http_port …`` and ``ok.yaml:1: …``: lines of the file
    for values the file never held."""
    path = write(tmp_path, MINIMAL, "ok.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides=[item])
    assert str(err.value).startswith(f"--set {item}: {field}: "), str(err.value)
    assert words in str(err.value)
    assert err.value.source == f"--set {item}" and err.value.line is None
    assert "ok.yaml" not in str(err.value)


def test_an_override_that_cannot_be_applied_names_the_set_argument(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), overrides=["server.http_port.x=1"])
    assert str(err.value) == ("--set server.http_port.x=1: cannot set server.http_port.x: "
                              "server.http_port is not a mapping")


def test_the_file_keeps_its_lines_beside_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "probe: {timeout_s: 0}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides=["server.http_port=abc"])
    lines = str(err.value).splitlines()
    assert lines == [
        f"{path}:6: probe.timeout_s: must be greater than zero, got 0.0",
        "--set server.http_port=abc: server.http_port: Input should be a valid integer, "
        "unable to parse string as an integer (got 'abc')",
    ]


MANY = """\
server:
  host: h
  http_port: 8000
  grpc_port: abc
  metrics_port: 0
models: [m]
checks: [health, bogus]
probe: {timeout_s: -1, retries: -2}
container: {runtime: none}
clusters:
  c: {backend: slurm, slurm: {parttion: x}}
"""


def test_every_error_of_a_file_is_reported_at_once_each_with_its_place(
        tmp_path: Path) -> None:
    """One small config took four fix-and-rerun cycles."""
    path = write(tmp_path, MANY, "many.yaml")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert lines[0].startswith(f"{path}:4: server.grpc_port: Input should be a valid integer")
    assert lines[1:] == [
        f"{path}:7: checks[1]: unknown check 'bogus'; valid checks: health, metadata, "
        "keepalive, infer, statistics, metrics, load",
        f"{path}:8: probe.timeout_s: must be greater than zero, got -1.0",
        f"{path}:8: probe.retries: must be zero or more, got -2",
        f"{path}:11: clusters.c.slurm.parttion: unknown key; valid keys: job_name, "
        "partition, " + lines[-1].split("valid keys: job_name, partition, ", 1)[-1],
    ]
    assert "account, qos, time" in lines[-1]
    assert [e.field for e in err.value.also] == [
        "checks[1]", "probe.timeout_s", "probe.retries", "clusters.c.slurm.parttion"]


def test_two_bad_ports_of_one_server_are_both_reported(tmp_path: Path) -> None:
    text = "server:\n  host: h\n  http_port: 0\n  metrics_port: 70000\nmodels: [m]\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).splitlines() == [
        f"{path}:3: server.http_port: must be between 1 and 65535, got 0",
        f"{path}:4: server.metrics_port: must be between 1 and 65535, got 70000",
    ]


def test_a_check_option_error_names_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "checks:\n  - load:\n      concurrency: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.field == "checks[0].load.concurrency"
    assert str(err.value).startswith(f"{path}:8: checks[0].load.concurrency: must be one")


def test_a_sweep_point_error_names_the_file_and_the_sweep_key(tmp_path: Path) -> None:
    text = MINIMAL + "sweep:\n  server.grpc_port: [1, 2]\n  probe.timeout_s: [1, -5]\n"
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}:8: probe.timeout_s: must be greater than zero, got -5.0 "
        "(in sweep point server.grpc_port=1, probe.timeout_s=-5)")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, MINIMAL), overrides=["sweep={probe.retries: [-1]}"])
    assert str(err.value).startswith(
        "--set sweep={probe.retries: [-1]}: probe.retries: must be zero or more")


def test_a_container_error_at_render_names_the_file_and_line(tmp_path: Path) -> None:
    from hpctriton.render.bundle import render_bundle

    text = MINIMAL.replace("container: {runtime: none}", "container: {runtime: singularity}")
    path = write(tmp_path, text + "clusters:\n  c: {backend: slurm}\n")
    with pytest.raises(ConfigError) as err:
        render_bundle(load_config(path), tmp_path / "bundle")
    assert str(err.value).startswith(f"{path}:5: container.image: required with runtime "
                                     "singularity")
    cfg = load_config(write(tmp_path, MINIMAL + "clusters:\n  c: {backend: slurm}\n",
                            "none.yaml"))
    with pytest.raises(ConfigError) as err:
        render_bundle(cfg, tmp_path / "bundle2")
    assert str(err.value).startswith(f"{tmp_path / 'none.yaml'}:7: clusters.c.python: "
                                     "required with container.runtime none")


def test_cli_config_errors_name_where_for_render_and_check(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hpctriton.cli import cli

    path = write(tmp_path, MANY, "many.yaml")
    runner = CliRunner()
    for argv in (["render", "-c", str(path), "-o", str(tmp_path / "b")],
                 ["check", "-c", str(path)]):
        result = runner.invoke(cli, argv)
        assert result.exit_code == 2, result.output
        lines = result.stderr.splitlines()
        assert lines[0].startswith(f"hpctriton: error: {path}:4: server.grpc_port: ")
        assert [line.split(": ", 2)[:2] for line in lines[1:]] == [
            [f"{path}:7", "checks[1]"], [f"{path}:8", "probe.timeout_s"],
            [f"{path}:8", "probe.retries"], [f"{path}:11", "clusters.c.slurm.parttion"]]
    ok = write(tmp_path, MINIMAL, "ok.yaml")
    result = runner.invoke(cli, ["check", "-c", str(ok), "--set", "server.http_port=abc"])
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "hpctriton: error: --set server.http_port=abc: server.http_port: ")
    result = runner.invoke(cli, ["check", "--http-url", "127.0.0.1:1", "--model", "m",
                                 "--set", "probe.timeout_s=0"])
    assert result.stderr.startswith(
        "hpctriton: error: --set probe.timeout_s=0: probe.timeout_s: must be greater")


def test_an_unknown_cluster_at_submit_names_the_files_clusters_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from hpctriton.cli import cli

    path = write(tmp_path, MINIMAL + "clusters:\n  here: {backend: local}\n")
    result = CliRunner().invoke(cli, ["submit", "-c", str(path), "--cluster", "there",
                                      "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"hpctriton: error: {path}:6: clusters: unknown cluster "
                                    "'there'; clusters in the config: here")
    assert not (tmp_path / "runs").exists()

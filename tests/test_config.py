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
        ("server: {host: h, http_port: 70000}\nmodels: [m]\n", "server", "between 1 and 65535"),
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
         "server", "sweep point"),
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

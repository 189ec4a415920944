"""Rendering bundles: golden files for the examples, layout, atomicity, bad input."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from hpctriton.config import config_from_data, load_config
from hpctriton.errors import ConfigError, RenderError
from hpctriton.render.bundle import render_bundle
from hpctriton.schedulers.dicos.scheduler import dicos_name
from hpctriton_probe import spec as spec_module
from hpctriton_probe.spec import load_spec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
RUN_ID = "20260101-000000-golden-abcd"
UPDATE = os.environ.get("HPCTRITON_UPDATE_GOLDEN") == "1"


def normalized(text: str) -> str:
    return text.replace(sys.executable, "<python>")


@pytest.mark.parametrize("example", ["asgc-slurm", "asgc-dicos", "local"])
def test_examples_render_to_their_golden_bundles(example: str, tmp_path: Path) -> None:
    bundle = render_bundle(load_config(EXAMPLES / f"{example}.yaml"), tmp_path / "b",
                           run_id=RUN_ID)
    names = ["job.sh", "spec.json", "submit.sh", "points.jsonl"]
    for name in names:
        path = bundle.path / name
        golden = GOLDEN / example / name
        if not path.exists():
            assert not golden.exists(), f"{name} no longer rendered for {example}"
            continue
        text = normalized(path.read_text())
        if UPDATE:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_text(text)
        assert golden.exists(), f"no golden file {golden}: run with HPCTRITON_UPDATE_GOLDEN=1"
        assert text == golden.read_text(), f"{example}/{name} differs from its golden file"


def test_bundle_layout_and_spec(tmp_path: Path) -> None:
    bundle = render_bundle(load_config(EXAMPLES / "asgc-slurm.yaml"), tmp_path / "b",
                           run_id=RUN_ID)
    assert sorted(p.name for p in bundle.path.iterdir()) == [
        "job.sh", "probe.pyz", "results", "spec.json"]
    spec = json.loads((bundle.path / "spec.json").read_text())
    assert spec["schema_version"] == 2 and spec["run_id"] == RUN_ID
    assert spec["n_tasks"] == 1 and spec["points"] is None
    assert [c["name"] for c in spec["task"]["checks"]] == [
        "health", "metadata", "keepalive", "infer", "statistics"]


def test_every_file_of_a_bundle_is_0600_and_every_folder_0700_a_tls_key_included(
        tmp_path: Path) -> None:
    """spec.json (headers), job.sh (env), files/ (a TLS key): nobody else reads them."""
    for name in ("ca.crt", "client.crt", "client.key"):
        (tmp_path / name).write_text(f"-----BEGIN {name}-----\n")
        (tmp_path / name).chmod(0o644)
    cfg = config_from_data({
        "server": {"host": "h", "grpc_port": 1, "headers": {"x-key": "${KEY}"},
                   "tls": {"ca": "ca.crt", "cert": "client.crt", "key": "client.key"}},
        "models": ["m"], "container": {"runtime": "none"},
        "clusters": {"c": {"backend": "slurm", "host": "login", "python": "/usr/bin/python3",
                           "env": {"TOKEN": "secret"}}},
        "sweep": {"probe.timeout_s": [1, 2]},
    }, base_dir=tmp_path)
    bundle = render_bundle(cfg, tmp_path / "b", run_id=RUN_ID)
    files = [p for p in bundle.path.rglob("*") if p.is_file()]
    folders = [bundle.path] + [p for p in bundle.path.rglob("*") if p.is_dir()]
    assert {p.relative_to(bundle.path).as_posix() for p in files} >= {
        "job.sh", "spec.json", "points.jsonl", "probe.pyz"}
    keys = [p for p in files if p.name.endswith("-client.key")]
    assert len(keys) == 1 and keys[0].parent.name == "files"
    assert {p.relative_to(bundle.path).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in files} == {p.relative_to(bundle.path).as_posix(): 0o600 for p in files}
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}
    assert {p.name for p in folders} >= {"b", "files", "results"}


@pytest.mark.parametrize(("headers", "warned"), [
    ({"Authorization": "Bearer abc123SECRET"}, ["Authorization"]),
    ({"x-api-key": "sk-live-42"}, ["x-api-key"]),
    ({"X-Trace": "eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG_HACGpVUMN_a9IV7pAx_Zmeo"},
     ["X-Trace"]),
    ({"Authorization": "Bearer ${TRITON_TOKEN}", "x-key": "${KEY}", "x-mode": "fast"}, []),
])
def test_a_literal_token_in_a_header_is_warned_about_naming_var(
        headers: dict, warned: list, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = config_from_data({"server": {"host": "h", "http_port": 1, "headers": headers},
                            "models": ["m"], "container": {"runtime": "none"}})
    with caplog.at_level(logging.WARNING, logger="hpctriton.render"):
        render_bundle(cfg, tmp_path / "b", backend="local", run_id=RUN_ID)
    messages = [r.getMessage() for r in caplog.records if r.name == "hpctriton.render"]
    assert [m.split(" ")[0] for m in messages] == [f"server.headers.{h}" for h in warned]
    for message in messages:
        assert "${VAR}" in message and "Bearer ${TRITON_TOKEN}" in message
        assert not any(v in message for v in headers.values())


def test_probe_zipapp_holds_only_the_probe_package(tmp_path: Path) -> None:
    bundle = render_bundle(load_config(EXAMPLES / "local.yaml"), tmp_path / "b", run_id=RUN_ID)
    names = zipfile.ZipFile(bundle.path / "probe.pyz").namelist()
    assert "__main__.py" in names
    assert all(n == "__main__.py" or n.startswith("hpctriton_probe/") for n in names)
    assert not any("numpy" in n or "tritonclient" in n for n in names)


def test_probe_zipapp_is_reproducible(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLES / "local.yaml")
    a = render_bundle(cfg, tmp_path / "a", run_id=RUN_ID)
    b = render_bundle(cfg, tmp_path / "b", run_id=RUN_ID)
    assert (a.path / "probe.pyz").read_bytes() == (b.path / "probe.pyz").read_bytes()


def test_sweep_renders_one_array(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLES / "asgc-slurm.yaml",
                      overrides=["sweep={server.host: [gpu01, gpu02, gpu03]}"])
    bundle = render_bundle(cfg, tmp_path / "b", run_id=RUN_ID)
    script = (bundle.path / "job.sh").read_text()
    assert "#SBATCH --array=0-2\n" in script
    assert "#SBATCH --output=results/slurm-%A_%a.out\n" in script
    spec = load_spec(str(bundle.path / "spec.json"))
    assert [t.server.host for t in spec.tasks] == ["gpu01", "gpu02", "gpu03"]
    assert spec.tasks[2].point == {"server.host": "gpu03"}
    assert load_spec(str(bundle.path / "spec.json"), task=1).tasks[0].server.host == "gpu02"


def test_a_sweep_of_10000_points_keeps_what_is_common_once_and_a_task_reads_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 10_000
    cfg = config_from_data({
        "server": {"host": "127.0.0.1", "http_port": 1}, "models": ["simple"],
        "checks": ["health"], "probe": {"retries": 0}, "container": {"runtime": "none"},
        "sweep": {"probe.timeout_s": [1 + i / 1000 for i in range(n)]},
    }, base_dir=tmp_path)
    bundle = render_bundle(cfg, tmp_path / "b", backend="local", run_id=RUN_ID)
    spec_path = bundle.path / "spec.json"
    spec = json.loads(spec_path.read_text())
    assert spec["n_tasks"] == n and spec_path.stat().st_size < 4096
    width = spec["points"]["line_bytes"]
    assert (bundle.path / "points.jsonl").stat().st_size == n * width and width < 200
    read: list[int] = []
    real_open = open

    def counting_open(*args: Any, **kwargs: Any) -> Any:
        fh = real_open(*args, **kwargs)
        real_read = fh.read
        fh.read = lambda *a: read.append(len(out := real_read(*a))) or out  # type: ignore
        return fh

    monkeypatch.setattr(spec_module, "open", counting_open, raising=False)
    task = load_spec(str(spec_path), task=n - 1).task(n - 1)
    monkeypatch.undo()
    assert sum(read) < 4096 + width, read  # spec.json and one line: not the sweep
    assert task.probe.timeout_s == 1 + (n - 1) / 1000 and task.server.http_port == 1
    assert task.point == {"probe.timeout_s": 1 + (n - 1) / 1000}
    # and the probe itself, as the job runs it (nothing listens on port 1: it fails fast)
    done = subprocess.run([sys.executable, str(bundle.path / "probe.pyz"), "--spec",
                           "spec.json", "--out", "results", "--task", str(n - 1)],
                          cwd=bundle.path, capture_output=True, text=True, timeout=60,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 1, done.stderr
    results = json.loads((bundle.path / "results" / str(n - 1) / "results.json").read_text())
    assert results["run"]["point"] == {"probe.timeout_s": 1 + (n - 1) / 1000}


def test_dicos_sweep_uses_an_argument_list(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLES / "asgc-dicos.yaml", overrides=["sweep={models: [[a], [b]]}"])
    bundle = render_bundle(cfg, tmp_path / "b", run_id=RUN_ID)
    submit = (bundle.path / "submit.sh").read_text()
    assert "-A arglist.txt" in submit and " -j " not in submit
    assert (bundle.path / "arglist.txt").read_text() == "--task 0\n--task 1\n"


def test_dicos_names_are_safe_and_short() -> None:
    name = dicos_name("my triton test with a long name", "20260101-000000-x-1a2b")
    assert len(name) <= 25 and " " not in name
    assert name == "my_triton_test_with-1a2b"
    assert dicos_name("   ", "r-abcd") == "hpct-abcd"


def test_backend_flag_overrides_cluster(tmp_path: Path) -> None:
    bundle = render_bundle(load_config(EXAMPLES / "asgc-slurm.yaml"), tmp_path / "b",
                           backend="dicos", run_id=RUN_ID)
    assert bundle.backend == "dicos"
    assert (bundle.path / "submit.sh").exists()


def test_files_named_by_checks_are_copied_into_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "inputs.json").write_text('{"data": []}')
    cfg = config_from_data({
        "server": {"host": "h", "http_port": 1}, "models": ["m"],
        "checks": [{"infer": {"input_data": "inputs.json",
                              "expected_outputs": {"m": "/cluster/only/expected.json"}}}],
        "container": {"runtime": "none"},
    }, base_dir=tmp_path)
    bundle = render_bundle(cfg, tmp_path / "b", backend="local", run_id=RUN_ID)
    spec = json.loads((bundle.path / "spec.json").read_text())
    options = spec["task"]["checks"][0]["options"]
    assert options["input_data"].startswith("files/")
    assert (bundle.path / options["input_data"]).read_text() == '{"data": []}'
    assert options["expected_outputs"] == {"m": "/cluster/only/expected.json"}


def test_missing_relative_file_is_an_error_and_nothing_is_written(tmp_path: Path) -> None:
    cfg = config_from_data({
        "server": {"host": "h", "http_port": 1}, "models": ["m"],
        "checks": [{"infer": {"input_data": "missing.json"}}], "container": {"runtime": "none"},
    }, base_dir=tmp_path)
    with pytest.raises(ConfigError, match="file not found"):
        render_bundle(cfg, tmp_path / "b", backend="local")
    assert not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == []


def test_non_empty_output_is_refused_and_force_replaces_only_bundles(tmp_path: Path) -> None:
    out = tmp_path / "b"
    out.mkdir()
    (out / "keep").write_text("x")
    cfg = load_config(EXAMPLES / "local.yaml")
    with pytest.raises(ConfigError, match="not empty"):
        render_bundle(cfg, out)
    with pytest.raises(ConfigError, match="does not hold a bundle"):
        render_bundle(cfg, out, force=True)
    assert (out / "keep").exists()
    (out / "keep").unlink()
    render_bundle(cfg, out)
    (out / "extra").write_text("x")
    render_bundle(cfg, out, force=True)
    assert not (out / "extra").exists() and (out / "job.sh").exists()


def test_the_current_or_config_folder_is_never_an_output(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    config_file = tmp_path / "hpctriton.yaml"
    config_file.write_text((EXAMPLES / "local.yaml").read_text())
    cfg = load_config(config_file)
    monkeypatch.chdir(tmp_path)
    for out in (Path("."), tmp_path, tmp_path.parent):
        with pytest.raises(ConfigError, match="give a new folder"):
            render_bundle(cfg, out, force=True)
    assert config_file.exists()


def test_container_image_required_for_container_runtimes(tmp_path: Path) -> None:
    cfg = config_from_data({"server": {"host": "h", "http_port": 1}, "models": ["m"]})
    with pytest.raises(ConfigError) as err:
        render_bundle(cfg, tmp_path / "b", backend="slurm")
    assert err.value.field == "container.image"
    assert not (tmp_path / "b").exists()


def test_runtime_none_needs_an_explicit_interpreter_for_remote_clusters(tmp_path: Path) -> None:
    cfg = config_from_data({"server": {"host": "h", "http_port": 1}, "models": ["m"],
                            "container": {"runtime": "none"},
                            "clusters": {"c": {"backend": "slurm", "host": "login"}}})
    with pytest.raises(ConfigError) as err:
        render_bundle(cfg, tmp_path / "b")
    assert err.value.field == "clusters.c.python"


def test_newline_in_sbatch_value_is_refused(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLES / "asgc-slurm.yaml",
                      overrides=['clusters.asgc-slurm.slurm.job_name="a\\nb"'])
    with pytest.raises(RenderError, match="newline"):
        render_bundle(cfg, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_unknown_sbatch_extra_option_is_refused(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLES / "asgc-slurm.yaml",
                      overrides=["clusters.asgc-slurm.slurm.extra=[--frobnicate=1]"])
    with pytest.raises(ConfigError, match="not a known sbatch option"):
        render_bundle(cfg, tmp_path / "b")


def test_sbatch_extra_options_are_rendered(tmp_path: Path) -> None:
    cfg = load_config(EXAMPLES / "asgc-slurm.yaml",
                      overrides=["clusters.asgc-slurm.slurm.extra=[--exclusive, --constraint=a b]"])
    script = (render_bundle(cfg, tmp_path / "b").path / "job.sh").read_text()
    assert "#SBATCH --exclusive\n" in script
    assert '#SBATCH --constraint="a b"\n' in script


def test_bad_run_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run id"):
        render_bundle(load_config(EXAMPLES / "local.yaml"), tmp_path / "b", run_id="a b\n#")


def test_rendered_scripts_pass_bash_syntax_check(tmp_path: Path) -> None:
    for example in ("asgc-slurm", "asgc-dicos", "local"):
        bundle = render_bundle(load_config(EXAMPLES / f"{example}.yaml"), tmp_path / example)
        for script in bundle.path.glob("*.sh"):
            subprocess.run(["bash", "-n", str(script)], check=True)


@pytest.mark.parametrize("example", sorted(p.stem for p in EXAMPLES.glob("*.yaml")))
def test_every_example_validates_and_renders(example: str, tmp_path: Path) -> None:
    bundle = render_bundle(load_config(EXAMPLES / f"{example}.yaml"), tmp_path / "b")
    subprocess.run(["bash", "-n", str(bundle.path / "job.sh")], check=True)
    assert bundle.n_tasks >= 1

"""Running rendered job scripts with stand-in programs that log their argv as JSON.

Every hostile value must arrive byte-identical as one argument, the canary file must
never appear, and the script must leave state.json and a MANIFEST that verifies.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpctriton.config import config_from_data
from hpctriton.render.bundle import Bundle, render_bundle

STAND_INS = Path(__file__).resolve().parent / "stand-ins"
FAKE_PYTHON = STAND_INS / "fake-python"
HOSTILE = [
    "a b", "it's", '"dq"', "$(touch CANARY)", "`touch CANARY`", ";touch CANARY;", "new\nline",
    "$HOME", "back\\slash", "*", "-dash", "#hash", "ünï", "&& touch CANARY", "| touch CANARY",
]


def hostile_dir(root: Path, value: str) -> Path:
    path = root / value.replace("/", "_")
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_config(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "http_port": 8000},
        "models": ["simple"],
        "container": {"runtime": "none"},
        "clusters": {"here": {"backend": "local", "python": str(FAKE_PYTHON)}},
    }
    for key, value in extra.items():
        data[key] = value
    return data


def render(tmp_path: Path, data: dict[str, Any], name: str = "b", **kw: Any) -> Bundle:
    return render_bundle(config_from_data(data, base_dir=tmp_path), tmp_path / name, **kw)


def run_job(bundle: Bundle, log: Path, *args: str, env: dict[str, str] | None = None,
            check_canary: Path | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "HPCTRITON_STANDIN_LOG": str(log), **(env or {})}
    proc = subprocess.run(["bash", "job.sh", *args], cwd=bundle.path, env=full_env,
                          capture_output=True, text=True, timeout=60)
    if check_canary is not None:
        assert not (check_canary / "CANARY").exists(), "a value was executed by the shell"
        assert not (bundle.path / "CANARY").exists(), "a value was executed by the shell"
    return proc


def log_records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def verify_manifest(task_dir: Path) -> dict[str, str]:
    manifest = {}
    for line in (task_dir / "MANIFEST.sha256").read_text().splitlines():
        digest, name = line.split("  ", 1)
        manifest[name] = digest
        assert hashlib.sha256((task_dir / name).read_bytes()).hexdigest() == digest, name
    return manifest


def test_local_job_runs_probe_with_bundle_paths_and_writes_state(tmp_path: Path) -> None:
    bundle = render(tmp_path, base_config(tmp_path))
    log = tmp_path / "argv.jsonl"
    proc = run_job(bundle, log)
    assert proc.returncode == 0, proc.stderr
    (record,) = log_records(log)
    root = str(bundle.path.resolve())
    assert record["argv"][1:] == [f"{root}/probe.pyz", "--spec", f"{root}/spec.json",
                                  "--out", f"{root}/results", "--task", "0"]
    assert record["env"]["HPCTRITON_RUN_ID"] == bundle.run_id
    assert record["env"]["HPCTRITON_TASK"] == "0"
    state = json.loads((bundle.path / "results/0/state.json").read_text())
    assert state["phase"] == "finished" and state["exit_code"] == 0
    assert state["interrupted"] is False and state["task"] == 0
    assert state["started_at"] <= state["finished_at"]
    assert "state.json" in verify_manifest(bundle.path / "results/0")


@pytest.mark.parametrize("code", [1, 2, 3])
def test_job_exit_code_is_the_probes(tmp_path: Path, code: int) -> None:
    bundle = render(tmp_path, base_config(tmp_path))
    proc = run_job(bundle, tmp_path / "log", env={"FAKE_PROBE_EXIT": str(code)})
    assert proc.returncode == code
    state = json.loads((bundle.path / "results/0/state.json").read_text())
    assert state["exit_code"] == code


def test_task_argument_selects_the_results_folder(tmp_path: Path) -> None:
    bundle = render(tmp_path, base_config(tmp_path))
    assert run_job(bundle, tmp_path / "log", "--task", "3").returncode == 0
    assert (bundle.path / "results/3/state.json").exists()
    assert log_records(tmp_path / "log")[0]["argv"][-1] == "3"


def test_bad_task_argument_is_a_usage_error(tmp_path: Path) -> None:
    bundle = render(tmp_path, base_config(tmp_path))
    proc = run_job(bundle, tmp_path / "log", "--task", "1;touch CANARY", check_canary=tmp_path)
    assert proc.returncode == 2
    assert "task index must be a number" in proc.stderr


def test_missing_interpreter_says_what_to_set(tmp_path: Path) -> None:
    data = base_config(tmp_path)
    data["clusters"]["here"]["python"] = "/nonexistent/python3"
    bundle = render(tmp_path, data)
    proc = run_job(bundle, tmp_path / "log")
    assert proc.returncode == 127
    assert "/nonexistent/python3 not found" in proc.stderr
    assert "clusters.here.python" in proc.stderr
    assert json.loads((bundle.path / "results/0/state.json").read_text())["exit_code"] == 127


def test_running_outside_the_bundle_is_refused(tmp_path: Path) -> None:
    bundle = render(tmp_path, base_config(tmp_path))
    proc = subprocess.run(["bash", str(bundle.path / "job.sh")], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "run the job from inside its bundle folder" in proc.stderr


def test_sigterm_marks_the_job_interrupted(tmp_path: Path) -> None:
    bundle = render(tmp_path, base_config(tmp_path))
    env = {**os.environ, "HPCTRITON_STANDIN_LOG": str(tmp_path / "log"), "FAKE_PROBE_SLEEP": "30"}
    proc = subprocess.Popen(["bash", "job.sh"], cwd=bundle.path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state_file = bundle.path / "results/0/state.json"
    deadline = time.monotonic() + 10
    while not (tmp_path / "log").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 143
    state = json.loads(state_file.read_text())
    assert state["interrupted"] is True and state["phase"] == "finished"
    assert state["exit_code"] == 143
    verify_manifest(bundle.path / "results/0")


def test_hostile_interpreter_path_env_and_values_arrive_intact(tmp_path: Path) -> None:
    env_values = {f"HOSTILE_{i}": v for i, v in enumerate(HOSTILE)}
    weird = hostile_dir(tmp_path / "py", "a b'c$(touch CANARY)`x`;\nz")
    python = weird / "python"
    shutil.copy(FAKE_PYTHON, python)
    data = base_config(tmp_path)
    data["clusters"]["here"].update(python=str(python), env=env_values)
    bundle = render(tmp_path, data)
    proc = run_job(bundle, tmp_path / "log", check_canary=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (record,) = log_records(tmp_path / "log")
    assert record["argv"][0] == str(python)
    for name, value in env_values.items():
        assert record["env"][name] == value, name


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
# NUL, CR and lone surrogates are refused when the config is read (a CR: sbatch refuses
# "DOS line breaks"): tests/test_config.py
@given(value=st.text(alphabet=st.characters(blacklist_characters="\x00\r",
                                            blacklist_categories=["Cs"]), max_size=30))
def test_any_env_value_arrives_intact(tmp_path: Path, value: str) -> None:
    sub = tmp_path / hashlib.sha256(value.encode()).hexdigest()[:12]
    sub.mkdir(exist_ok=True)
    data = base_config(sub)
    data["clusters"]["here"]["env"] = {"HOSTILE_VALUE": value}
    bundle = render_bundle(config_from_data(data, base_dir=sub), sub / "b", force=True)
    log = sub / "log"
    log.unlink(missing_ok=True)
    proc = run_job(bundle, log, check_canary=sub)
    assert proc.returncode == 0, proc.stderr
    assert log_records(log)[0]["env"]["HOSTILE_VALUE"] == value

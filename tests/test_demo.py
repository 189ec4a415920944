"""The first run: `hpctriton demo` does the main job on one machine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hpctriton.tools.demo import DEMO_CONFIG

ROOT = Path(__file__).resolve().parent.parent


def test_demo_config_is_examples_local_yaml() -> None:
    assert yaml.safe_load((ROOT / "examples" / "local.yaml").read_text()) == DEMO_CONFIG


@pytest.mark.service
def test_demo_starts_a_server_runs_the_local_job_and_reports(tmp_path: Path, triton) -> None:  # type: ignore[no-untyped-def]
    # (the session's `triton` fixture is requested so that a machine without the
    # nvidia-pytriton wheel skips here, or fails under CI, with the fixture's message)
    done = subprocess.run([sys.executable, "-m", "hpctriton", "demo", "--json",
                           "--runs-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["overall"] == "succeeded" and data["results"]["ok"]
    checks = {t["check"] for task in data["results"]["tasks"] for t in task["checks"]}
    assert checks == {"health", "metadata", "keepalive", "infer", "statistics", "metrics"}
    assert Path(data["run_dir"], "results", "0", "MANIFEST.sha256").is_file()


def test_demo_refuses_a_port_in_use(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "hpctriton", "demo", "--http-port",
                               str(port)], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)
    if "needs the nvidia-pytriton wheel" in done.stderr:
        pytest.skip("nvidia-pytriton not installed")
    assert done.returncode == 2
    assert f"--http-port {port} is in use" in done.stderr

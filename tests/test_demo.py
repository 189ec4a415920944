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
    entries = [c for task in data["results"]["tasks"] for c in task["checks"]]
    # the decoupled demo model shows streaming figures on both protocols (issue 16)
    streamed = [c for c in entries if c["check"] == "infer" and c["model"] == "token_streamer"]
    assert {c["protocol"] for c in streamed} == {"http", "grpc"}
    for entry in streamed:
        details = entry["details"]
        assert details["decoupled"] and details["responses"] == 16
        assert 0 < details["ttft_ms"] < details["e2e_ms"] and len(details["itl_ms"]) == 15
        assert "first after" in entry["message"]
    # the metrics check reports what this run did: one inference per protocol per model
    for model in ("simple", "token_streamer"):
        (metrics,) = [c for c in entries if c["check"] == "metrics" and c["model"] == model]
        during = metrics["details"]["during_run"]["values"]
        assert during["nv_inference_request_success"] == 2, metrics


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


def _without_venv_on_path() -> dict[str, str]:
    """The environment of a shell where the venv is not active (as after ./scripts/demo)."""
    import os

    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and Path(p).resolve() != Path(venv_bin).resolve())
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = path or "/usr/bin:/bin"
    return env


@pytest.mark.service
@pytest.mark.timeout(600)
def test_the_demos_next_command_works_as_written(tmp_path: Path, triton) -> None:  # type: ignore[no-untyped-def]
    """./scripts/demo runs the venv's hpctriton without activating the venv: the command
    it prints next must run as it is, in the same shell (issue 16, point 2)."""
    program = Path(sys.executable).parent / "hpctriton"
    env = _without_venv_on_path()
    done = subprocess.run([str(program), "demo"], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    first = lines[lines.index("next:") + 1].split("  # ")[0].strip()
    assert first.endswith("--html report.html") and " report " in first
    assert "hpctriton is not on your PATH" in done.stderr
    again = subprocess.run(["bash", "-c", first], capture_output=True, text=True, timeout=120,
                           cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "report.html").is_file()


@pytest.mark.service
@pytest.mark.timeout(600)
def test_demo_serve_keeps_the_server_until_ctrl_c_and_prints_its_flags(
        tmp_path: Path, triton) -> None:  # type: ignore[no-untyped-def]
    import re
    import signal
    import socket

    from click.testing import CliRunner

    from hpctriton.cli import cli

    proc = subprocess.Popen([sys.executable, "-m", "hpctriton", "demo", "--serve",
                             "--ready-timeout", "240"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = proc.stdout.readline().strip() if proc.stdout else ""
        assert re.fullmatch(r"--http-url 127\.0\.0\.1:\d+ --grpc-url 127\.0\.0\.1:\d+ "
                            r"--metrics-url 127\.0\.0\.1:\d+", line), line
        flags = line.split()
        result = CliRunner().invoke(cli, ["check", *flags, "--model", "simple", "--checks",
                                          "health,metrics"])
        assert result.exit_code == 0, result.output
        assert proc.poll() is None  # still serving
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    port = int(flags[1].rsplit(":", 1)[1])
    with socket.socket() as sock, pytest.raises(OSError):
        sock.settimeout(2)
        sock.connect(("127.0.0.1", port))  # the server went with it

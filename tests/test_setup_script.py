"""``./scripts/setup`` prints one progress line per step and keeps what pip and venv
print in a log file, named (with its last lines) only when a step fails (issue 16)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

NOISY = """#!/bin/sh
# a stand-in for the venv's python: pip's chatter, then the exit code asked for
i=0
while [ $i -lt 40 ]; do echo "Collecting package-$i (noise line $i)"; i=$((i+1)); done
echo "pip error: the last words" >&2
exit {code}
"""


def _venv(tmp_path: Path, code: int) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(NOISY.format(code=code))
    python.chmod(0o755)
    program = venv / "bin" / "hpctriton"
    program.write_text("#!/bin/sh\necho 'hpctriton, version 0.0-test'\n")
    program.chmod(0o755)
    return venv


def _setup(tmp_path: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HPCTRITON_VENV": str(venv), "TMPDIR": str(tmp_path)}
    return subprocess.run([str(ROOT / "scripts" / "setup")], capture_output=True, text=True,
                          env=env, timeout=120)


def test_setup_shows_one_line_per_step_and_no_pip_output(tmp_path: Path) -> None:
    venv = _venv(tmp_path, 0)
    done = _setup(tmp_path, venv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"setup: upgrading pip in {venv}",
        f"setup: installing hpctriton and its test dependencies into {venv} (about a minute "
        "the first time)",
        f"setup: {venv} is ready (hpctriton, version 0.0-test)"]
    assert "noise" not in done.stdout + done.stderr
    assert not list(tmp_path.glob("hpctriton-setup.*.log"))  # removed on success
    again = _setup(tmp_path, venv)  # nothing changed: nothing to do
    assert again.stdout.splitlines() == [f"setup: {venv} is ready (hpctriton, version 0.0-test)"]


def test_a_failed_step_names_its_exit_code_last_lines_and_full_log(tmp_path: Path) -> None:
    venv = _venv(tmp_path, 7)
    done = _setup(tmp_path, venv)
    assert done.returncode == 7, done.stdout + done.stderr
    assert done.stdout.splitlines() == [f"setup: upgrading pip in {venv}"]
    assert f"setup: failed (exit 7): upgrading pip in {venv}" in done.stderr
    assert "    pip error: the last words" in done.stderr
    assert "noise line 39" in done.stderr and "noise line 5)" not in done.stderr  # the tail
    (log,) = tmp_path.glob("hpctriton-setup.*.log")
    assert f"setup: the full log: {log}" in done.stderr
    assert "noise line 0" in log.read_text() and "noise line 39" in log.read_text()
    assert not (venv / ".hpctriton-setup").exists()  # a failed install is not stamped

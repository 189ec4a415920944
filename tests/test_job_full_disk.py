"""job.sh on a full disk: it checks its own writes, exits with its own code (74) and
never leaves an empty state.json; the host then reads the task as failed, with why."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_policy import unavailable
from test_job_script import base_config, render

from hpctriton.results.model import Results
from hpctriton.runs.states import combine
from hpctriton.schedulers import JobState, SchedulerInfo

pytestmark = pytest.mark.service  # mounts a tmpfs: needs root

FILLER = """#!/bin/bash
# a probe that fills the disk its results go to, as a large load test can
dd if=/dev/zero of="results/$HPCTRITON_TASK/filler" bs=4096 2>/dev/null
exit 0
"""


@pytest.fixture
def full_results(tmp_path: Path) -> Iterator[Path]:
    """A bundle whose results/ is a 64 KB file system that its probe fills."""
    python = tmp_path / "filling-python"
    python.write_text(FILLER)
    python.chmod(0o755)
    data = base_config(tmp_path)
    data["clusters"]["here"]["python"] = str(python)
    bundle = render(tmp_path, data)
    results = bundle.path / "results"
    results.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(results)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        unavailable("tmpfs", done.stderr.strip() or "mount failed (not root?)")
    yield bundle.path
    subprocess.run(["umount", "-l", str(results)], check=False)


def test_a_full_disk_ends_the_job_with_74_and_no_empty_state_file(full_results: Path) -> None:
    proc = subprocess.run(["bash", "job.sh"], cwd=full_results, capture_output=True,
                          text=True, timeout=60, env=os.environ.copy())
    assert proc.returncode == 74, proc.stderr
    assert "could not write" in proc.stderr and "full disk" in proc.stderr
    task = full_results / "results" / "0"
    state = json.loads((task / "state.json").read_text())  # whole: the start's, not empty
    assert state["phase"] == "running"
    assert not list(task.glob(".state.json.*")) and not (task / "MANIFEST.sha256.tmp").exists()
    # what the host makes of it: the scheduler's exit code, with what it means
    status = combine(0, state, SchedulerInfo(JobState.FAILED, raw="FAILED", exit_code=74))
    assert status.state == JobState.FAILED and "full disk" in status.reason
    task_results = Results.from_dir(full_results / "results").tasks[0]
    assert not task_results.ok
    assert "never wrote its final state" in " ".join(task_results.problems)

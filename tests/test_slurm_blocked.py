"""Slurm jobs that never start, and workdirs Slurm would misread, on the real cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from e2e import make_config

from hpctriton.api import submit
from hpctriton.schedulers import JobState

pytestmark = pytest.mark.service

FAST = {"hint_interval_s": 1.0, "hint_interval_max_s": 2.0}
#: A server nobody listens on: these jobs never get far enough to need one.
NO_SERVER = SimpleNamespace(http_port=9, grpc_port=9, metrics_port=9)


@pytest.fixture
def down_partition(slurm) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A partition of the test cluster that is DOWN: its jobs pend with PartitionDown."""
    name = "hpctdown"
    slurm.run("scontrol", "create", f"PartitionName={name}", f"Nodes={slurm.node}",
              "State=DOWN")
    yield name
    slurm.run("scontrol", "delete", f"PartitionName={name}", check=False)


def test_a_job_in_a_down_partition_fails_after_max_pending_s_and_is_cancelled(
        tmp_path: Path, sshd, slurm, down_partition: str) -> None:  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, NO_SERVER, sshd, checks=["health"],
                         cluster={"slurm": {"partition": down_partition}, "max_pending_s": 3})
    run = submit(config, "test")
    with run:
        done = run.wait(timeout_s=60, **FAST)
        task = done.tasks[0]
        assert task.state == JobState.FAILED, task
        assert "PartitionDown" in task.reason and "its job was cancelled" in task.reason
        job = run.record.jobs[0].job_id
        shown = slurm.run("sacct", "-n", "-P", "-X", "-o", "State", "-j", job)
        assert shown.strip().startswith("CANCELLED"), shown
        assert run.status().tasks[0].state == JobState.FAILED  # and so it stays


def test_submit_wait_says_why_it_waits_on_stderr_when_not_a_terminal(
        tmp_path: Path, sshd, slurm, down_partition: str) -> None:  # type: ignore[no-untyped-def]
    config = make_config(tmp_path, NO_SERVER, sshd, checks=["health"],
                         cluster={"slurm": {"partition": down_partition}})
    path = tmp_path / "hpctriton.yaml"
    path.write_text(yaml.safe_dump(config.to_data()))
    done = subprocess.run([sys.executable, "-m", "hpctriton", "submit", "-c", str(path),
                           "--wait", "--timeout", "4", "--json"], capture_output=True,
                          text=True, timeout=120)
    data = json.loads(done.stdout)
    assert data["overall"] == "pending"
    assert "task 0 pending: PartitionDown" in done.stderr, done.stderr
    slurm.run("scancel", *[t["job_id"] for t in data["tasks"]])


def test_a_percent_in_the_workdir_reaches_slurm_escaped(tmp_path: Path, sshd, slurm  # type: ignore[no-untyped-def]
                                                       ) -> None:
    workdir = tmp_path / "100%j done"
    config = make_config(tmp_path, NO_SERVER, sshd, checks=["health"],
                         cluster={"workdir": str(workdir)})
    run = submit(config, "test")
    with run:
        status = run.wait(timeout_s=120, **FAST)
        task = status.tasks[0]
        # the job ran (no JobLaunchFailure): the probe found no server, as asked
        assert task.state == JobState.FAILED and task.reason == "checks failed", task
        run.collect()
        job = run.record.jobs[0].job_id
        assert (run.path / "results" / f"slurm-{job}.out").is_file()
        # nothing was written at the name Slurm would expand it to (100<job id> done)
        assert [p.name for p in tmp_path.glob("100*")] == ["100%j done"]

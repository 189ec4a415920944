"""Waiting on a shared cluster: jobs that can never start, reasons worth printing, state
files a full disk left empty, and a local runner whose pid another process has now."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from test_run_edge_cases import SilentScheduler, make_record

from hpctriton.errors import ConfigError
from hpctriton.runs.progress import PendingReasons, task_ranges
from hpctriton.runs.record import RunRecord
from hpctriton.runs.states import combine
from hpctriton.runs.watch import RunStatus, Waiter, read_states, status
from hpctriton.schedulers import JobRef, JobState, SchedulerInfo
from hpctriton.schedulers.local import LocalScheduler
from hpctriton.schedulers.slurm import SlurmScheduler
from hpctriton.schedulers.slurm import parse as slurm
from hpctriton.schedulers.slurm.scheduler import output_path
from hpctriton.transport import LocalTransport, Transport


def test_blocked_reasons_are_those_only_an_administrator_can_clear() -> None:
    assert slurm.blocked_reason("PartitionDown") == "the partition is down"
    assert slurm.blocked_reason("(InvalidAccount)") == "the job's account is invalid"
    assert slurm.blocked_reason("QOSMaxWallDurationPerJobLimit")
    for hopeful in ("Priority", "Resources", "BeginTime", "QOSJobLimit", "AssocMaxJobsLimit",
                    "Dependency", "None"):
        assert slurm.blocked_reason(hopeful) is None, hopeful
    reason = "ReqNodeNotAvail, UnavailableNodes:n[1-3]"
    assert slurm.reason_word(reason) == "ReqNodeNotAvail"
    assert slurm.unavailable_nodes(reason) == "n[1-3]"
    assert slurm.nodes_down("NodeName=n1 State=DOWN+DRAIN x\nNodeName=n2 State=IDLE+DRAIN y")
    assert not slurm.nodes_down("NodeName=n1 State=DOWN\nNodeName=n2 State=IDLE y")
    assert not slurm.nodes_down("")


def test_sacct_says_why_a_launch_failed_and_which_exit_code_a_job_had(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=2, jobs=[JobRef("7", [0, 1], 0, {"array": True})])
    info = slurm.parse_sacct("7_0|7|FAILED|0:53|JobLaunchFailure\n7_1|8|FAILED|74:0|None\n",
                             record)
    assert "output file" in info[0].reason and "workdir" in info[0].reason
    assert info[1].exit_code == 74
    running = combine(1, {"phase": "running"}, info[1])
    assert running.state == JobState.FAILED and running.exit_code == 74
    assert "could not write its results" in running.reason


def test_an_empty_state_file_is_a_failed_task_with_the_reason(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=2)
    for task, text in ((0, ""), (1, "{not json")):
        folder = Path(record.remote_dir) / "results" / str(task)
        folder.mkdir(parents=True)
        (folder / "state.json").write_text(text)
    states = read_states(LocalTransport(), record, [0, 1])
    for task in (0, 1):
        done = combine(task, states[task], SchedulerInfo(JobState.SUCCEEDED, raw="COMPLETED"))
        assert done.state == JobState.FAILED
        assert "state.json is empty or damaged" in done.reason and "full disk" in done.reason
    still = combine(0, states[0], SchedulerInfo(JobState.RUNNING, raw="RUNNING"))
    assert still.state == JobState.RUNNING


def test_a_percent_in_the_workdir_is_escaped_and_a_backslash_refused() -> None:
    assert output_path("/home/a/50%/runs/r", 1) == "/home/a/50%%/runs/r/results/slurm-%j.out"
    assert output_path("/w/r", 3) == "/w/r/results/slurm-%A_%a.out"
    SlurmScheduler().check_remote_dir("/home/a/50%/runs/r", "clusters.c.workdir")
    with pytest.raises(ConfigError, match=r"clusters\.c\.workdir.*backslash"):
        SlurmScheduler().check_remote_dir("/home/a/b\\c/r", "clusters.c.workdir")


def test_pending_reasons_are_said_once_each_time_they_change() -> None:
    lines: list[str] = []
    say = PendingReasons(lines.append)

    def pending(reasons: dict[int, str]) -> RunStatus:
        from hpctriton.runs.states import TaskStatus

        return RunStatus({t: TaskStatus(t, JobState.PENDING, reason=r) if r != "run"
                          else TaskStatus(t, JobState.RUNNING) for t, r in reasons.items()})

    say(pending({0: "Priority", 1: "Priority", 2: "Priority"}))
    say(pending({0: "Priority", 1: "Priority", 2: "Priority"}))
    say(pending({0: "run", 1: "Priority", 2: "BeginTime"}))
    assert lines == ["tasks 0-2 pending: Priority", "task 2 pending: BeginTime"]
    assert task_ranges([5, 0, 1, 2, 7, 8]) == "0-2, 5, 7-8"


class DownPartition(SilentScheduler):
    """Every task pends on a partition that is down; cancel is recorded."""

    name = "down"

    def __init__(self) -> None:
        self.cancelled: list[int] = []

    def poll(self, transport: Transport, record: RunRecord,  # type: ignore[override]
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        state = JobState.CANCELLED if self.cancelled else JobState.PENDING
        return {t: SchedulerInfo(state, "5", "PartitionDown", state.value.upper())
                for t in tasks}

    def blocked(self, transport: Transport, run: RunRecord,  # type: ignore[override]
                pending: dict[int, SchedulerInfo]) -> dict[int, str]:
        return {t: f"PartitionDown: {slurm.blocked_reason(i.reason)}"
                for t, i in pending.items()}

    def cancel(self, transport: Transport, record: RunRecord,  # type: ignore[override]
               tasks: Sequence[int]) -> None:
        self.cancelled += tasks


def test_a_task_blocked_past_max_pending_fails_and_its_job_is_cancelled(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    record = make_record(tmp_path, n=2, jobs=[JobRef("5", [0, 1])])
    record.submitted_at = "2026-01-01T00:00:00+00:00"  # long ago
    scheduler = DownPartition()
    waiter = Waiter(LocalTransport(), scheduler, record, hint_interval_s=0.2,
                    hint_interval_max_s=0.2, max_pending_s=60)
    done = waiter.wait(timeout_s=20)
    assert done.done and scheduler.cancelled == [0, 1]
    for task in (0, 1):
        assert done.tasks[task].state == JobState.FAILED
        assert "the partition is down" in done.tasks[task].reason
        assert "its job was cancelled" in done.tasks[task].reason
    assert "failed: pending for" in caplog.text
    # a later process (status, report) sees the same: the record keeps why
    again = status(LocalTransport(), scheduler, RunRecord.load(record.path))
    assert again.tasks[0].state == JobState.FAILED and "partition is down" in \
        again.tasks[0].reason


def test_a_task_pending_for_a_hopeful_reason_is_waited_for(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=1, jobs=[JobRef("5", [0])])
    record.submitted_at = "2026-01-01T00:00:00+00:00"
    scheduler = DownPartition()
    scheduler.blocked = lambda *a: {}  # type: ignore[method-assign]
    waiter = Waiter(LocalTransport(), scheduler, record, hint_interval_s=0.2,
                    hint_interval_max_s=0.2, slice_s=0.5, max_pending_s=60)
    assert waiter.wait(timeout_s=1.5).tasks[0].state == JobState.PENDING
    assert scheduler.cancelled == []


def test_local_cancel_never_signals_a_pid_that_is_no_longer_the_runner(tmp_path: Path) -> None:
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        for extra in ({"started": "1"}, {}):  # a wrong start time; an old record without one
            record = make_record(tmp_path / str(len(extra)), n=1, backend="local",
                                 jobs=[JobRef(str(stranger.pid), [0], extra=extra)])
            LocalScheduler().cancel(LocalTransport(), record, [0])
            time.sleep(0.2)
            assert stranger.poll() is None, "another process was signalled"
            assert LocalScheduler().poll(LocalTransport(), record, [0])[0].raw == "gone"
    finally:
        stranger.kill()
        stranger.wait()


def test_the_local_runner_records_its_start_time_and_is_cancelled_by_it(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=1, backend="local")
    remote = Path(record.remote_dir)
    (remote / "job.sh").write_text("sleep 30\n")
    (refs,) = [LocalScheduler().submit(LocalTransport(), record, [0])]
    record.jobs = refs
    assert refs[0].extra["started"].isdigit()
    assert LocalScheduler().poll(LocalTransport(), record, [0])[0].raw == "alive"
    LocalScheduler().cancel(LocalTransport(), record, [0])
    deadline = time.monotonic() + 10
    while LocalScheduler().poll(LocalTransport(), record, [0])[0].raw == "alive":
        assert time.monotonic() < deadline, "the runner was not cancelled"
        time.sleep(0.1)
    assert json.loads(json.dumps(refs[0].extra))  # stored as plain JSON in run.json

"""Edge cases of submitting, waiting and run records, with stand-in schedulers.

These use the local transport and small stand-in programs on PATH (an `sbatch` that
prints a site notice on stderr, a backend that reports nothing) to reach situations a
real cluster produces rarely but does produce.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from hpctriton.api import Run, plan
from hpctriton.config import config_from_data
from hpctriton.errors import ConfigError, UsageError
from hpctriton.runs.record import RunRecord, find_run, list_runs, runs_dir_of, save_config
from hpctriton.runs.watch import Waiter
from hpctriton.schedulers import JobRef, JobState, Scheduler, SchedulerInfo
from hpctriton.schedulers.local import LocalOptions
from hpctriton.schedulers.slurm import SlurmOptions, SlurmScheduler
from hpctriton.transport import LocalTransport, Transport

CONFIG = {"server": {"host": "h", "http_port": 1}, "models": ["m"],
          "container": {"runtime": "none"},
          "clusters": {"c": {"backend": "slurm", "python": "/usr/bin/python3"}}}


def make_record(tmp_path: Path, n: int = 1, jobs: list[JobRef] | None = None,
                backend: str = "slurm") -> RunRecord:
    remote = tmp_path / "remote"
    (remote / "results").mkdir(parents=True, exist_ok=True)
    record = RunRecord(run_id="20260101-000000-t-abcd", backend=backend, cluster="c",
                       host="localhost", remote_dir=str(remote), n_tasks=n,
                       points=[{}] * n, jobs=jobs or [], path=tmp_path / "run")
    record.path.mkdir(parents=True, exist_ok=True)
    save_config(record, config_from_data(CONFIG, base_dir=tmp_path))
    record.save()
    return record


def fake_program(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_sbatch_notices_on_stderr_do_not_hide_the_job_id(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_program(bin_dir, "sbatch", 'echo "job_submit.lua: using account default" >&2\n'
                                    'echo "sbatch: notice: this partition drains at 6pm" >&2\n'
                                    "echo 4242\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    record = make_record(tmp_path)
    made = SlurmScheduler().submit(LocalTransport(), record, [0])
    assert [j.job_id for j in made] == ["4242"]


def test_sbatch_without_a_job_id_is_a_clear_failure(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from hpctriton.errors import CommandError

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_program(bin_dir, "sbatch", 'echo "Submitted batch job (maybe)"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    with pytest.raises(CommandError, match="without a job id"):
        SlurmScheduler().submit(LocalTransport(), make_record(tmp_path), [0])


class SilentScheduler(Scheduler):
    """Knows no job at all (they were purged, or never existed)."""

    name = "silent"
    job_template = "hpctriton.schedulers.local:job.sh.j2"

    def submit(self, transport: Transport, record: RunRecord,
               tasks: Sequence[int]) -> list[JobRef]:
        return []

    def poll(self, transport: Transport, record: RunRecord,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        return {}

    def cancel(self, transport: Transport, record: RunRecord, tasks: Sequence[int]) -> None:
        pass


class EndedScheduler(SilentScheduler):
    """Says every job ended, as a scheduler does the moment after the job script exits."""

    def poll(self, transport: Transport, record: RunRecord,
             tasks: Sequence[int]) -> dict[int, SchedulerInfo]:
        return {t: SchedulerInfo(JobState.FAILED, "1", "runner exited", "gone") for t in tasks}


def test_a_vanished_task_ends_the_wait_as_failed(tmp_path: Path) -> None:
    record = make_record(tmp_path, jobs=[JobRef("1", [0])])
    waiter = Waiter(LocalTransport(), SilentScheduler(), record, hint_interval_s=0.2,
                    hint_interval_max_s=0.2)
    status = waiter.wait(timeout_s=20)
    assert status.done
    assert status.tasks[0].state == JobState.FAILED and "vanished" in status.tasks[0].reason


def test_a_state_file_written_just_before_the_hint_wins(tmp_path: Path) -> None:
    record = make_record(tmp_path, jobs=[JobRef("1", [0])])
    task_dir = Path(record.remote_dir) / "results" / "0"
    task_dir.mkdir(parents=True)
    waiter = Waiter(LocalTransport(), EndedScheduler(), record)
    # the job finished between the last look at the state files and the scheduler's answer
    waiter._states = {0: {"phase": "running"}}
    waiter._update()
    (task_dir / "state.json").write_text(json.dumps(
        {"phase": "finished", "exit_code": 0, "interrupted": False}) + "\n")
    waiter._hint()
    waiter._update()
    assert waiter._status.tasks[0].state == JobState.SUCCEEDED


def test_waiting_for_a_run_that_was_never_submitted_says_so(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    record.add_event("submit-failed", error="sbatch: command not found")
    with pytest.raises(UsageError, match="never submitted: sbatch: command not found"):
        Run(record, LocalTransport()).wait(timeout_s=1)


def test_task_numbers_are_checked_before_anything_runs(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=3, jobs=[JobRef("1", [0, 1, 2], 0, {"array": True})])
    run = Run(record, LocalTransport())
    with pytest.raises(UsageError, match="no task 99"):
        run.resubmit([99])
    with pytest.raises(UsageError, match="no task 5"):
        run.cancel([5])


def test_the_local_backend_refuses_to_cancel_part_of_a_runner(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=3, jobs=[JobRef("99999999", [0, 1, 2])], backend="local")
    with pytest.raises(UsageError, match="cancels them together"):
        Run(record, LocalTransport()).cancel([1])
    assert not [e for e in record.events if e["event"] == "cancel"]


def test_a_broken_run_record_does_not_hide_the_others(tmp_path: Path) -> None:
    good = make_record(tmp_path / "a")
    broken = tmp_path / "a" / "runs-broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"run_id": 3, "jobs": "nope"}')
    root = good.path.parent
    (root / "zz-broken").mkdir()
    (root / "zz-broken" / "run.json").write_text("[1, 2]")
    assert [r.run_id for r in list_runs(root)] == [good.run_id]
    assert find_run(root).run_id == good.run_id


def test_runs_dir_is_read_from_a_config_that_needs_set_to_be_complete(tmp_path: Path) -> None:
    config = tmp_path / "hpctriton.yaml"
    config.write_text("server: {host: k8s-master01.twgrid.org}\nmodels: [simple]\n"
                      "runs_dir: records\n")  # ports come later, with --set
    assert runs_dir_of(config) == tmp_path / "records"
    config.write_text("runs_dir: [not, a, folder]\n")
    with pytest.raises(ConfigError, match="runs_dir"):
        runs_dir_of(config)


def test_a_run_submitted_with_another_backend_keeps_its_cluster_settings(tmp_path: Path) -> None:
    record = make_record(tmp_path, backend="local")  # --backend local on a slurm cluster
    cluster = record.cluster_config()
    assert cluster.backend == "local" and cluster.python == "/usr/bin/python3"
    assert cluster.options == LocalOptions()


def test_a_run_record_written_before_schedulers_were_plugins_still_opens(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    path = record.path / "config.yaml"
    data = yaml.safe_load(path.read_text())
    data["clusters"]["c"].update(dicos={"jobs": 1, "require_cores": None},
                                 local={"parallel": 1})  # every section, as they were saved
    path.write_text(yaml.safe_dump(data))
    assert RunRecord.load(record.path).cluster_config().options == SlurmOptions()


def test_plan_says_where_a_run_would_go_and_writes_nothing(tmp_path: Path) -> None:
    config = config_from_data({**CONFIG, "runs_dir": str(tmp_path / "runs")}, base_dir=tmp_path)
    planned = plan(config, "c", run_id="20260101-000000-t-abcd")
    assert (planned.backend, planned.cluster, planned.n_tasks) == ("slurm", "c", 1)
    assert planned.remote_dir == "hpctriton-runs/20260101-000000-t-abcd"
    assert planned.run_dir == tmp_path / "runs" / "20260101-000000-t-abcd"
    assert plan(config, backend="dicos").backend == "dicos"
    assert not (tmp_path / "runs").exists()

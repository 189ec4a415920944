"""Parsing schedulers' answers (unit level; the real tools are exercised end to end)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpctriton.errors import RemoteError
from hpctriton.runs.record import RunRecord
from hpctriton.runs.states import combine
from hpctriton.schedulers import JobRef, JobState, SchedulerInfo
from hpctriton.schedulers.dicos import parse as dicos_cli
from hpctriton.schedulers.slurm.parse import (
    max_array_size,
    parse_parsable,
    parse_sacct,
    parse_squeue,
    slurm_state,
)
from hpctriton.schedulers.slurm.scheduler import chunk_spec, chunks, cluster_option


def record(*jobs: JobRef, n: int = 20) -> RunRecord:
    return RunRecord(run_id="r", backend="slurm", cluster=None, host="h", remote_dir="/x",
                     n_tasks=n, points=[{}] * n, jobs=list(jobs), path=Path("."))


ARRAYS = record(JobRef("100", list(range(16)), 0, {"array": True}),
                JobRef("101", list(range(16, 20)), 16, {"array": True}))


def test_parsable_output_may_name_a_cluster() -> None:
    assert parse_parsable("1234\n") == ("1234", "")
    assert parse_parsable("1234;cluster2") == ("1234", "cluster2")
    with pytest.raises(ValueError):
        parse_parsable("sbatch: error: Batch job submission failed")


def test_array_chunks_stay_below_max_array_size() -> None:
    assert [len(c) for c in chunks(range(20), 16)] == [16, 4]
    assert chunk_spec([16, 17, 18, 19]) == "0-3"
    assert chunk_spec([3, 5, 9], 2) == "0,2,6%2"
    assert max_array_size("MaxArraySize            = 16\n") == 16
    assert max_array_size("") == 1001


def test_sacct_rows_map_to_tasks_including_pending_ranges() -> None:
    text = ("100_0|3|COMPLETED|0:0|None\n100_1|4|CANCELLED by 0|0:15|None\n"
            "100_[2-15%4]|2|PENDING|0:0|Priority\n101_3|9|TIMEOUT|0:0|None\n")
    info = parse_sacct(text, ARRAYS)
    assert info[0].state == JobState.SUCCEEDED and info[0].job_id == "100_0"
    assert info[1].state == JobState.CANCELLED
    assert all(info[t].state == JobState.PENDING and info[t].reason == "Priority"
               for t in range(2, 16))
    assert info[19].state == JobState.TIMEOUT and info[19].job_id == "101_3"
    assert 16 not in info


def test_squeue_rows_map_to_tasks_and_anchor_job_ids() -> None:
    # "JobId=1" must not match inside "ArrayJobId=100": fields are parsed, not grepped
    single = record(JobRef("1", [0], 0, {"array": False}), n=1)
    text = "1|1|N/A|RUNNING|None\n"
    assert parse_squeue(text, single)[0].state == JobState.RUNNING
    arrays = "100_4|7|4|PENDING|Resources\n101_0|8|0|OUT_OF_MEMORY|None\n"
    info = parse_squeue(arrays, ARRAYS)
    assert info[4].reason == "Resources" and info[16].state == JobState.FAILED


def test_unknown_slurm_states_stay_visible() -> None:
    assert slurm_state("FROBNICATED") == JobState.UNKNOWN
    assert slurm_state("CANCELLED by 1000") == JobState.CANCELLED


def test_dicos_lines_and_table() -> None:
    subs = dicos_cli.parse_submissions("Job 9999999 is submitted. (TaskID: 9999)\n"
                                       "Job 9999998 is submitted. (TaskID: 9999)\n")
    assert [(s.job_id, s.task_id) for s in subs] == [("9999999", "9999"), ("9999998", "9999")]
    out = dicos_cli.parse_outputs("Got output of job 9999999 in ./DiCOS_job_9999999_a_output")
    assert out == {"9999999": "./DiCOS_job_9999999_a_output"}
    table = (" TaskID    PandaID  Name                      Status\n"
             "-----------------------------------------------------\n"
             " 9999      9999999  NameOfJob                 running\n"
             " 9999      9999998  Name With Spaces          holding\n"
             " 9999      9999997  odd                       weird_state\n")
    rows = dicos_cli.parse_status(table)
    assert [(r.job_id, r.name, r.state) for r in rows] == [
        ("9999999", "NameOfJob", JobState.RUNNING),
        ("9999998", "Name With Spaces", JobState.RUNNING),
        ("9999997", "odd", JobState.UNKNOWN)]


def test_dicos_long_format_columns() -> None:
    header = (" TaskID    PandaID  Name                      Queue                           "
              "Creation_Time        End_Time             Status")
    row = (" 1001      9000001  job-a                     ANALY_TAIWAN_TWGRID_CPU         "
           "2026-11-21T22:40:33  -                    finished")
    (parsed,) = dicos_cli.parse_status(header + "\n" + "-" * len(header) + "\n" + row)
    assert parsed.name == "job-a" and parsed.status == "finished"
    assert parsed.extra == {"Queue": "ANALY_TAIWAN_TWGRID_CPU",
                            "Creation_Time": "2026-11-21T22:40:33", "End_Time": "-"}


def test_dicos_error_lines_are_failures_with_the_line_quoted() -> None:
    with pytest.raises(RemoteError, match=r"\[ERROR\] proxy expired"):
        dicos_cli.raise_on_errors("fine\n[ERROR] proxy expired\n", "", "dicos job status")
    with pytest.raises(RemoteError, match="Failed to download"):
        dicos_cli.raise_on_errors("[2026-11-21 22:40:33 ERROR] Failed to download x", "", "g")
    dicos_cli.raise_on_errors("all good", "", "x")


@pytest.mark.parametrize(
    ("state", "hint", "expected", "reason"),
    [
        ({"phase": "finished", "exit_code": 0}, None, JobState.SUCCEEDED, "all checks passed"),
        ({"phase": "finished", "exit_code": 1}, None, JobState.FAILED, "checks failed"),
        ({"phase": "finished", "exit_code": 139}, None, JobState.FAILED,
         "crashed (exit code 139: killed by signal 11, SIGSEGV)"),
        ({"phase": "finished", "exit_code": 143, "interrupted": True},
         SchedulerInfo(JobState.TIMEOUT, raw="TIMEOUT"), JobState.TIMEOUT, ""),
        ({"phase": "running"}, SchedulerInfo(JobState.FAILED, raw="NODE_FAIL"), JobState.FAILED,
         "ended while running (NODE_FAIL)"),
        ({"phase": "running"}, None, JobState.RUNNING, ""),
        (None, SchedulerInfo(JobState.PENDING, reason="Priority"), JobState.PENDING, "Priority"),
        (None, SchedulerInfo(JobState.SUCCEEDED, raw="COMPLETED"), JobState.FAILED,
         "no state.json"),
        (None, None, JobState.UNKNOWN, "no state file"),
    ],
)
def test_state_files_are_truth_and_the_scheduler_a_hint(state, hint, expected, reason) -> None:  # type: ignore[no-untyped-def]
    status = combine(0, state, hint)
    assert status.state == expected
    assert reason in status.reason


def test_after_a_resubmit_only_the_new_job_speaks_for_the_task() -> None:
    rec = record(JobRef("100", [0, 1, 2], 0, {"array": True}),
                 JobRef("200", [1], 1, {"array": True}), n=3)
    # squeue sorts the new PENDING row first; the old FAILED row must not win
    squeue = "200_0|9|0|PENDING|Priority\n100_1|4|1|FAILED|NonZeroExitCode\n"
    assert parse_squeue(squeue, rec)[1].state == JobState.PENDING
    sacct = "200_0|9|PENDING|0:0|Priority\n100_1|4|FAILED|1:0|None\n"
    assert parse_sacct(sacct, rec)[1].job_id == "200_0"


def test_multi_cluster_answers_add_the_cluster_option() -> None:
    assert cluster_option([JobRef("1", [0], 0, {"cluster": ""})]) == []
    assert cluster_option([JobRef("1", [0], 0, {"cluster": "gpu"})]) == ["-M", "gpu"]


def test_a_requeued_task_is_pending_again() -> None:
    state = {"phase": "finished", "exit_code": 143, "interrupted": True}
    status = combine(0, state, SchedulerInfo(JobState.PENDING, raw="REQUEUED"))
    assert status.state == JobState.PENDING and "requeued" in status.reason

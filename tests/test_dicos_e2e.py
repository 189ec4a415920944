"""DiCOS end to end through the real OpenSSH server, against the DiCOS emulator.

DiCOS is not public: ``tests/stand-ins/dicos`` implements its documented command-line
contract (docs/schedulers.md, "DiCOS"); these tests drive it exactly as a user's UI node would be
driven: hpctriton stages the bundle over SFTP, runs its ``submit.sh`` line, polls
``dicos job status``, fetches outputs with ``dicos job getoutput`` and collects them
through one tar stream.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e import make_config

from hpctriton.api import Run, submit
from hpctriton.errors import CollectError, RemoteError
from hpctriton.schedulers import JobState

pytestmark = pytest.mark.service

EMULATOR = Path(__file__).resolve().parent / "stand-ins" / "dicos"
FAST = {"hint_interval_s": 1.0, "hint_interval_max_s": 2.0}


@pytest.fixture
def dicos_state(tmp_path: Path) -> Iterator[Path]:
    """A fresh emulator state folder; every job it started is stopped afterwards."""
    state = tmp_path / "dicos-state"
    state.mkdir()
    yield state
    subprocess.run([str(EMULATOR), "_shutdown"], env={**os.environ,
                   "DICOS_EMULATOR_STATE": str(state)}, capture_output=True, timeout=60)


def dicos_config(tmp_path, triton, sshd, state, **kw):  # type: ignore[no-untyped-def]
    cluster = {"remote_env": {"DICOS_EMULATOR_STATE": str(state)}, **kw.pop("cluster", {})}
    return make_config(tmp_path, triton, sshd, backend="dicos", cluster=cluster, **kw)


def run_to_end(run: Run, timeout_s: float = 120) -> None:
    status = run.wait(timeout_s=timeout_s, collect=False, **FAST)  # collect is under test
    assert status.done, status.counts()


def test_submit_wait_getoutput_collect_every_check_passes(tmp_path, sshd, triton,
                                                          dicos_state) -> None:
    config = dicos_config(tmp_path, triton, sshd, dicos_state)
    run = submit(config, "test")
    with run:
        job = run.record.jobs[0]
        assert job.job_id.isdigit() and job.extra["task_id"].isdigit()
        run_to_end(run)
        assert run.status().tasks[0].state == JobState.SUCCEEDED
        report = run.collect()
        assert report.fetched == [0]
        results = run.results()
        assert results.ok, [(c.check, c.status, c.message) for c in results.checks if not c.ok]
        assert {c.check for c in results.checks} >= {"health", "metadata", "infer"}
        assert run.collect().already == [0]  # twice changes nothing
        # getoutput's results were moved into place, not linked (collect follows no link)
        remote_task = Path(run.record.remote_dir) / "results" / "0"
        assert remote_task.is_dir() and not remote_task.is_symlink()


def test_three_copies_with_j3(tmp_path, sshd, triton, dicos_state) -> None:
    config = dicos_config(tmp_path, triton, sshd, dicos_state, checks=["health"],
                          cluster={"dicos": {"jobs": 3}})
    run = submit(config, "test")
    with run:
        assert run.n_tasks == 3 and len({j.job_id for j in run.record.jobs}) == 3
        assert len({j.extra["task_id"] for j in run.record.jobs}) == 1
        run_to_end(run)
        assert sorted(run.collect().fetched) == [0, 1, 2]
        assert run.results().ok and len(run.results().tasks) == 3


def test_sweep_uses_one_task_with_an_argument_list(tmp_path, sshd, triton,
                                                   dicos_state) -> None:
    config = dicos_config(tmp_path, triton, sshd, dicos_state, checks=["health"],
                          sweep={"models": [["simple"], ["echo_bytes"]]})
    run = submit(config, "test")
    with run:
        run_to_end(run)
        run.collect()
        tasks = run.results().tasks
        assert [t.data["run"]["task"] for t in tasks] == [0, 1]
        models = [{c.model for c in t.checks if c.model} for t in tasks]
        assert models == [{"simple"}, {"echo_bytes"}]


def test_twenty_jobs_are_all_seen_beyond_the_15_row_default(tmp_path, sshd, triton,
                                                            dicos_state) -> None:
    config = dicos_config(tmp_path, triton, sshd, dicos_state, checks=["health"],
                          cluster={"dicos": {"jobs": 20}})
    run = submit(config, "test")
    with run:
        run_to_end(run, 240)
        status = run.status()
        assert status.counts() == {"succeeded": 20}
        polls = [h.script for h in run.transport.history if "job status" in h.script]
        assert polls and all(" -n " in p and " -T " in p for p in polls)


def test_cancel(tmp_path, sshd, triton, dicos_state) -> None:
    config = dicos_config(tmp_path, triton, sshd, dicos_state,
                          checks=[{"keepalive": {"calls": 2, "period_s": 60}}])
    run = submit(config, "test")
    with run:
        run.cancel()
        run_to_end(run, 60)
        assert run.status().tasks[0].state == JobState.CANCELLED


def test_name_with_spaces_is_made_dicos_safe(tmp_path, sshd, triton, dicos_state) -> None:
    config = dicos_config(tmp_path, triton, sshd, dicos_state, checks=["health"],
                          cluster={"dicos": {"name": "my triton check, with spaces!"}})
    run = submit(config, "test")
    with run:
        run_to_end(run)
        out = subprocess.run([str(EMULATOR), "job", "status", run.record.jobs[0].job_id],
                             env={**os.environ, "DICOS_EMULATOR_STATE": str(dicos_state)},
                             capture_output=True, text=True)
        assert "my_triton_check_with-" in out.stdout
        assert run.collect().fetched == [0]


def test_error_lines_become_clear_failures(tmp_path, sshd, triton, dicos_state) -> None:
    config = dicos_config(tmp_path, triton, sshd, dicos_state, checks=["health"])
    run = submit(config, "test")
    with run:
        run_to_end(run)
        (dicos_state / "inject.json").write_text(json.dumps({"fail": "download"}))
        with pytest.raises(CollectError, match="Failed to download"):
            run.collect()
        assert not (run.path / "results" / "0").exists()
        (dicos_state / "inject.json").write_text(json.dumps({"fail": "proxy"}))
        with pytest.raises(RemoteError, match=r"\[ERROR\] Your proxy"):
            run.status()
    config = dicos_config(tmp_path / "again", triton, sshd, dicos_state, checks=["health"])
    with pytest.raises(RemoteError, match="proxy"):
        submit(config, "test")


def test_resubmit_records_the_new_job(tmp_path, sshd, triton, dicos_state) -> None:
    from hpctriton.testing import free_port

    config = dicos_config(tmp_path, triton, sshd, dicos_state, checks=["health"],
                          server={"http_port": free_port(), "grpc_port": free_port()})
    run = submit(config, "test")
    with run:
        run_to_end(run)
        assert run.status().tasks[0].state == JobState.FAILED
        old = run.record.jobs[0].job_id
        new = run.resubmit()
        assert new and new[0].job_id != old
        assert run.record.job_for_task(0).job_id == new[0].job_id  # type: ignore[union-attr]
        assert any(e["event"] == "resubmit" for e in run.record.events)
        run_to_end(run)


def test_doctor_pings_dicos(tmp_path, sshd, triton, dicos_state) -> None:
    from hpctriton.tools.doctor import run_doctor

    config = dicos_config(tmp_path, triton, sshd, dicos_state)
    checks = {c.name: c for c in run_doctor(config, "test")}
    assert checks["dicos ping"].ok and checks["dicos whoami"].ok

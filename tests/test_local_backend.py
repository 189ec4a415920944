"""The local backend: the bundle runs as background processes, here or over SSH."""

from __future__ import annotations

import pytest
from e2e import make_config

from hpctriton.api import open_run, submit
from hpctriton.schedulers import JobState

pytestmark = pytest.mark.service

NO_CONTAINER = {"runtime": "none"}


def test_on_this_machine_runs_in_place_and_collects(tmp_path, triton) -> None:
    config = make_config(tmp_path, triton, None, backend="local", container=NO_CONTAINER,
                         sweep={"models": [["simple"], ["echo_bytes"]]})
    run = submit(config, "test", wait=True)
    with run:
        assert run.record.remote_dir == str((run.path / "bundle").resolve())
        assert run.status().overall == JobState.SUCCEEDED
        results = run.results()
        assert results.ok and len(results.tasks) == 2
        assert (run.path / "results" / "local-runner.log").is_file()


def test_over_ssh_on_a_remote_host(tmp_path, sshd, triton) -> None:
    import sys

    config = make_config(tmp_path, triton, sshd, backend="local", container=NO_CONTAINER,
                         cluster={"python": sys.executable, "local": {"parallel": 2}},
                         sweep={"probe.timeout_s": [3, 4, 5]})
    run = submit(config, "test")
    with run:
        assert run.record.remote_dir.startswith(str(tmp_path / "remote"))
        assert run.wait(timeout_s=120, collect=False).done
        report = run.collect()
        assert sorted(report.fetched) == [0, 1, 2]
        assert run.results().ok


def test_cancel_interrupts_the_running_tasks(tmp_path, triton) -> None:
    config = make_config(tmp_path, triton, None, backend="local", container=NO_CONTAINER,
                         checks=[{"keepalive": {"calls": 2, "period_s": 60}}])
    run = submit(config, "test")
    with run:
        run.wait(timeout_s=1.5)
        run.cancel()
        status = run.wait(timeout_s=30, hint_interval_s=1.0)
        assert status.done
        task = status.tasks[0]
        assert task.state == JobState.CANCELLED, task
        run.collect()
        data = (run.path / "results/0/results.json").read_text()
        assert '"interrupted": true' in data
    assert open_run(run.run_id, runs_dir=tmp_path / "runs").status().tasks[0].state == \
        JobState.CANCELLED

"""The newcomer's path through the CLI (issue 16): submit prints the exact next commands;
`status`, `wait`, `report`, `cancel` without RUN find the run just made from another
folder (the run index); a job has one id in `runs`, `status` and after a cancel; `wait`
(CLI and API) collects, so `results()` is never silently empty.

Real local-backend jobs against the session's Triton server; ``XDG_STATE_HOME`` is
each test's own (``tests/conftest.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hpctriton.api import NothingCollected, submit
from hpctriton.cli import cli
from hpctriton.config import load_config

pytestmark = pytest.mark.service


def write_project(folder: Path, triton: Any, checks: list[Any] | None = None) -> Path:
    """A project folder with its config (runs_dir beside it) for the local backend."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hpctriton.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"host": "127.0.0.1", "http_port": triton.http_port,
                   "grpc_port": triton.grpc_port, "metrics_port": triton.metrics_port},
        "models": ["simple"],
        "checks": checks or ["health", "metadata"],
        "probe": {"timeout_s": 5, "retries": 0},
        "container": {"runtime": "none"},
        "clusters": {"here": {"backend": "local"}},
    }))
    return path


def test_the_run_just_made_is_found_from_anywhere_with_one_job_id(
        tmp_path: Path, triton: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_project(tmp_path / "project", triton)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    runner = CliRunner()
    submitted = runner.invoke(cli, ["submit", "-c", str(config)])
    assert submitted.exit_code == 0, submitted.output
    run_id = submitted.stdout.split("submitted run ", 1)[1].split(":", 1)[0]
    assert "next:" in submitted.stdout
    assert f"hpctriton wait {run_id}" in submitted.stdout  # the exact command
    assert f"hpctriton report {run_id}" in submitted.stdout

    # no RUN, no -c, in another folder: the newest run this user made
    waited = runner.invoke(cli, ["wait", "--timeout", "120"])
    assert waited.exit_code == 0, waited.output
    assert f"collected into {tmp_path / 'project' / 'hpctriton-runs' / run_id}" in \
        waited.stdout
    report = runner.invoke(cli, ["report"], env={"COLUMNS": "80"})
    assert report.exit_code == 0, report.output
    assert f"run {run_id}" in report.stdout and "OK: " in report.stdout

    listed = json.loads(runner.invoke(cli, ["runs", "--json"]).stdout)
    assert [r["run_id"] for r in listed] == [run_id]
    status = json.loads(runner.invoke(cli, ["status", "--json"]).stdout)
    assert status["run_id"] == run_id
    # one id per job: run.json (`runs`) and the task's state.json (`status`)
    assert [t["job_id"] for t in status["tasks"]] == listed[0]["jobs"]


def test_a_cancelled_local_job_keeps_its_id(tmp_path: Path, triton: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_project(tmp_path / "project", triton,
                           checks=[{"keepalive": {"calls": 2, "period_s": 60}}])
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(cli, ["submit", "-c", str(config)]).exit_code == 0
    job = json.loads(runner.invoke(cli, ["runs", "--json"]).stdout)[0]["jobs"][0]
    runner.invoke(cli, ["wait", "--timeout", "1.5", "--no-collect"])
    assert runner.invoke(cli, ["cancel"]).exit_code == 0
    waited = runner.invoke(cli, ["wait", "--timeout", "60", "--json"])
    task = json.loads(waited.stdout)["tasks"][0]
    assert task["state"] == "cancelled", task
    assert task["job_id"] == job  # was "local-<job.sh's pid>" before


def test_api_wait_collects_so_results_are_never_silently_empty(tmp_path: Path,
                                                               triton: Any) -> None:
    config = load_config(write_project(tmp_path / "project", triton))
    run = submit(config, "here")
    with run:
        status = run.wait(timeout_s=120)  # collects when the run has ended
        assert status.done
        results = run.results()
        assert results.ok and len(results.tasks) == 1
    second = submit(config, "here")
    with second:
        assert second.wait(timeout_s=120, collect=False).done
        with pytest.raises(NothingCollected, match="call run.collect"):
            second.results()
        second.collect()
        assert second.results().ok


def test_report_after_submit_wait_shows_that_run_not_an_older_one_in_this_folder(
        tmp_path: Path, triton: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's path: an older run sits in ./hpctriton-runs; `submit -c
    examples/x.yaml --wait` records the new run beside its config (runs_dir resolves
    against the config's folder); `report` with no arguments showed the older run."""
    here = tmp_path / "clone"
    runner = CliRunner()
    monkeypatch.chdir(tmp_path)
    older = runner.invoke(cli, ["submit", "-c", str(write_project(here, triton)), "--wait"])
    assert older.exit_code == 0, older.output
    assert (here / "hpctriton-runs").is_dir()
    monkeypatch.chdir(here)
    config = write_project(here / "examples", triton, checks=["health"])
    newer = runner.invoke(cli, ["submit", "-c", str(config), "--wait"])
    assert newer.exit_code == 0, newer.output
    run_id = newer.stdout.split("submitted run ", 1)[1].split(":", 1)[0]
    assert run_id in newer.stdout.split("next:", 1)[1]  # the exact next commands
    assert (here / "examples" / "hpctriton-runs" / run_id).is_dir()
    report = runner.invoke(cli, ["report", "--json"])
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["run_id"] == run_id

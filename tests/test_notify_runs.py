"""``notify:`` outside a schedule (issue 17, point 5): the route docs/monitoring.md gives
DiCOS and this machine (``submit --wait`` from cron, no schedule) alerts too.

Real local-backend jobs against the session's Triton server: a run whose ``metadata``
check fails (a model the server does not have) makes ``submit --wait`` run the notify
command; a run that passes sends nothing; a notify command that fails is said on stderr
and changes no exit code; a delivered event is not sent again by the next ``collect``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from test_newcomer_path import write_project

from hpctriton.cli import cli

pytestmark = pytest.mark.service


def project_with_notify(folder: Path, triton: Any, models: list[str], hook: Path,
                        gate: Path) -> Path:
    """A local-backend project whose notify command fails (exit 7) until ``gate``
    exists, then writes its stdin to ``hook``.json and its HPCTRITON_ variables to
    ``hook``.env."""
    path = write_project(folder, triton)
    data = yaml.safe_load(path.read_text())
    data["models"] = models
    data["notify"] = {"command": f"test -f {shlex.quote(str(gate))} || exit 7; "
                                 f"cat > {shlex.quote(str(hook))}.json; "
                                 f"env | grep ^HPCTRITON_ | sort > {shlex.quote(str(hook))}.env",
                      "timeout_s": 20}
    path.write_text(yaml.safe_dump(data))
    return path


def run_id_of(output: str) -> str:
    return output.split("submitted run ", 1)[1].split(":", 1)[0]


def test_submit_wait_notifies_a_failed_run_and_collect_does_not_repeat_it(
        tmp_path: Path, triton: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hook, gate = tmp_path / "hook", tmp_path / "gate"
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    config = project_with_notify(tmp_path / "failing", triton, ["simple", "no_such_model"],
                                 hook, gate)

    # the notify command fails: said on stderr; the exit code is the run's (failed: 1)
    failed = runner.invoke(cli, ["submit", "-c", str(config), "--wait", "--timeout", "120"])
    assert failed.exit_code == 1, failed.output
    run_id = run_id_of(failed.stdout)
    assert "notify failed: notify command exited 7" in failed.stderr
    assert not Path(f"{hook}.json").exists()

    # collect RUN tries again (nothing was delivered); still failing: exit 0 all the same
    again = runner.invoke(cli, ["collect", run_id])
    assert again.exit_code == 0, again.output
    assert "notify failed: notify command exited 7" in again.stderr

    # delivered: the event's JSON on stdin, and the variables
    gate.touch()
    told = runner.invoke(cli, ["collect", run_id, "--json"])
    assert told.exit_code == 0, told.output
    assert f"notified: {run_id} failed" in told.stderr
    said = json.loads(told.stdout)["notify"]
    assert said["verdict"] == "failed" and said["notify_problems"] == []
    heard = json.loads(Path(f"{hook}.json").read_text())
    run_dir = tmp_path / "failing" / "hpctriton-runs" / run_id
    assert heard["event"] == heard["verdict"] == "failed"
    assert heard["run_id"] == run_id and heard["cluster"] == "here"
    assert heard["schedule"] is None and heard["path"] == str(run_dir.absolute())
    assert heard["host"] and heard["started_at"]
    assert any("metadata" in r and "no_such_model" in r for r in heard["reasons"]), heard
    assert said["notified"] == heard
    env = Path(f"{hook}.env").read_text().splitlines()
    assert "HPCTRITON_EVENT=failed" in env and f"HPCTRITON_RUN_ID={run_id}" in env
    assert "HPCTRITON_CLUSTER=here" in env and f"HPCTRITON_RUN_PATH={heard['path']}" in env
    assert any(line.startswith("HPCTRITON_REASON=") and "no_such_model" in line
               for line in env), env

    # once per run and verdict: the next collect sends nothing
    Path(f"{hook}.json").unlink()
    quiet = runner.invoke(cli, ["collect", run_id])
    assert quiet.exit_code == 0, quiet.output
    assert "notif" not in quiet.stderr and not Path(f"{hook}.json").exists()


def test_a_passing_run_and_an_event_not_asked_for_send_nothing(
        tmp_path: Path, triton: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    hook, gate = tmp_path / "hook", tmp_path / "gate"
    gate.touch()
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    passing = project_with_notify(tmp_path / "passing", triton, ["simple"], hook, gate)
    ok = runner.invoke(cli, ["submit", "-c", str(passing), "--wait", "--timeout", "120",
                             "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["notify"] == {"verdict": "ok", "notified": None,
                                                "notify_problems": []}
    assert "notif" not in ok.stderr
    assert not Path(f"{hook}.json").exists() and not Path(f"{hook}.env").exists()

    # notify.on without `failed`: a failed run is judged, and nothing is sent
    failing = project_with_notify(tmp_path / "failing", triton, ["no_such_model"], hook,
                                  gate)
    only_regressions = ["--set", "notify.on=[regressed]"]
    failed = runner.invoke(cli, ["submit", "-c", str(failing), *only_regressions, "--wait",
                                 "--timeout", "120", "--json"])
    assert failed.exit_code == 1, failed.output
    assert json.loads(failed.stdout)["notify"]["verdict"] == "failed"
    assert json.loads(failed.stdout)["notify"]["notified"] is None
    assert not Path(f"{hook}.json").exists()

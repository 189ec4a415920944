"""Damaged run records and results: a clear exit 2 naming the file and the field, never a
traceback or a hang; crashed jobs never look green; failed submits leave a record that
says why, or nothing at all."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from test_run_edge_cases import CONFIG, make_record

from hpctriton.api import submit
from hpctriton.cli import cli
from hpctriton.config import config_from_data
from hpctriton.errors import HpctritonError
from hpctriton.report.junit import junit_xml
from hpctriton.results.model import Results
from hpctriton.runs.record import RunRecord
from hpctriton.schedulers import JobRef
from hpctriton.testing import free_port

COMMANDS = [["status"], ["collect"], ["report"], ["cancel"], ["resubmit"],
            ["wait", "--timeout", "1"], ["report", "--junit", "J"]]

DAMAGE: dict[str, tuple[str, Any, str]] = {
    # name: (file, value or edit, words the message must hold)
    "n_tasks as text": ("run.json", {"n_tasks": "3"}, "n_tasks"),
    "ten million tasks": ("run.json", {"n_tasks": 10_000_000}, "n_tasks"),
    "events as text": ("run.json", {"events": "nope"}, "events"),
    "points as text": ("run.json", {"points": "nope"}, "points"),
    "job tasks as text": ("run.json", {"jobs": [{"job_id": "1", "tasks": "0"}]}, "jobs.0.tasks"),
    "job task outside": ("run.json", {"jobs": [{"job_id": "1", "tasks": [5]}]}, "task 5"),
    "not json": ("run.json", "{oops", "cannot be read"),
    "garbage config": ("config.yaml", "- [unclosed\n", "config.yaml"),
    "config not a map": ("config.yaml", "just text\n", "config.yaml"),
}


def damage(record: RunRecord, file: str, value: Any) -> None:
    path = record.path / file
    if isinstance(value, dict):
        data = json.loads(path.read_text())
        data.update(value)
        path.write_text(json.dumps(data))
    else:
        path.write_text(value)


@pytest.mark.parametrize("name", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_run_record_is_a_plain_exit_2_naming_file_and_field(tmp_path: Path,
                                                                       name: str) -> None:
    file, value, words = DAMAGE[name]
    record = make_record(tmp_path, n=1, jobs=[JobRef("99999999", [0])])
    damage(record, file, value)
    for command in COMMANDS:
        args = [a if a != "J" else str(tmp_path / "j.xml") for a in command]
        started = time.monotonic()
        result = CliRunner().invoke(cli, [*args[:1], str(record.path), *args[1:]])
        assert time.monotonic() - started < 10, (command, "took too long")
        if result.exit_code != 2 and file == "config.yaml" and command[0] == "report":
            assert result.exit_code == 1  # a report needs no config: no results yet
            continue
        assert result.exit_code == 2, (command, result.output, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        assert file in result.output and words in result.output, (command, result.output)


def test_runs_lists_the_good_records_and_skips_a_damaged_one(tmp_path: Path) -> None:
    good = make_record(tmp_path / "a")
    bad = make_record(tmp_path / "b")
    damage(bad, "run.json", {"n_tasks": 10_000_000})
    root = tmp_path / "root"
    root.mkdir()
    for record, name in ((good, "good"), (bad, "bad")):
        (root / name).symlink_to(record.path)
    result = CliRunner().invoke(cli, ["runs", "--runs-dir", str(root)])
    assert result.exit_code == 0 and good.run_id in result.output


def write_run(folder: Path, tasks: dict[int, dict[str, str | bytes]], n: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({
        "run_id": folder.name, "backend": "slurm", "cluster": None, "host": "h",
        "remote_dir": "/r", "n_tasks": n, "points": [{}] * n,
        "created_at": "2026-01-01T00:00:00+00:00"}))
    for task, files in tasks.items():
        for name, text in files.items():
            path = folder / "results" / str(task) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return folder


def results_doc(planned: list[str], checks: list[str]) -> str:
    return json.dumps({
        "schema_version": 1,
        "run": {"run_id": "r", "task": 0, "interrupted": False, "checks_planned": planned},
        "checks": [{"check": c, "protocol": "http", "model": None, "status": "pass",
                    "duration_s": 0.1, "message": "ok", "details": {}} for c in checks]})


def state(code: int) -> str:
    return json.dumps({"schema_version": 1, "phase": "finished", "task": 0,
                       "exit_code": code, "interrupted": False}) + "\n"


def test_empty_or_corrupt_results_and_states_are_failed_tasks_not_tracebacks(
        tmp_path: Path) -> None:
    run = write_run(tmp_path / "run-a", {
        0: {"results.json": "", "state.json": state(0)},
        1: {"results.json": results_doc(["health"], ["health"]), "state.json": ""},
        2: {"results.json": "{\"checks\": [1, 2]", "state.json": "{"},
        3: {"results.json": json.dumps({"run": "x", "checks": "y"})},
    }, 4)
    other = write_run(tmp_path / "run-b", {0: {"results.json": b"\x00\xff"}}, 1)
    runner = CliRunner()
    for args in (["report", str(run)], ["report", str(run), "--json"],
                 ["report", str(run), "--junit", str(tmp_path / "j.xml")],
                 ["report", str(run), "--html", str(tmp_path / "r.html")],
                 ["compare", str(run), str(other)]):
        result = runner.invoke(cli, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, result.exception)
        assert result.exit_code in (0, 1), (args, result.output)
    res = Results.from_run_dir(run)
    assert not res.ok
    problems = {t.task: " ".join(t.problems) for t in res.tasks}
    assert "results.json is empty" in problems[0]
    assert "state.json is empty" in problems[1]
    assert "damaged" in problems[2] and "damaged" in problems[3]
    xml = (tmp_path / "j.xml").read_text()
    assert 'errors="0"' not in xml.split("\n", 2)[1]


def test_a_crashed_job_is_an_error_in_junit_and_the_report_names_the_cause(
        tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {0: {
        "results.json": results_doc(["health", "metadata", "load"], ["health"]),
        "state.json": state(137)}}, 1)
    xml = junit_xml(run)
    assert 'failures="0" errors="0"' not in xml
    assert "exit code 137" in xml and "SIGKILL" in xml and "metadata, load" in xml
    result = CliRunner().invoke(cli, ["report", str(run)])
    assert result.exit_code == 1
    assert "exit code 137" in result.output and "never ran: metadata, load" in result.output


def test_run_records_are_private_to_their_owner(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    assert stat.S_IMODE(record.path.stat().st_mode) == 0o700
    for name in ("run.json", "config.yaml"):
        assert stat.S_IMODE((record.path / name).stat().st_mode) == 0o600, name


def test_a_submit_that_cannot_connect_leaves_no_run_folder(tmp_path: Path) -> None:
    data = {**CONFIG, "runs_dir": str(tmp_path / "runs"),
            "clusters": {"c": {"backend": "slurm", "host": "127.0.0.1", "port": free_port(),
                               "python": "/usr/bin/python3", "connect_timeout_s": 5,
                               "known_hosts": str(tmp_path / "kh")}}}
    with pytest.raises(HpctritonError, match="connection refused"):
        submit(config_from_data(data, base_dir=tmp_path), "c")
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_a_staging_failure_is_recorded_as_a_failed_submit_with_the_reason(
        tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    data = {**CONFIG, "runs_dir": str(tmp_path / "runs"),
            "clusters": {"c": {"backend": "slurm", "python": "/usr/bin/python3",
                               "workdir": str(blocker / "runs")}}}
    with pytest.raises(HpctritonError, match="cannot create"):
        submit(config_from_data(data, base_dir=tmp_path), "c")
    (folder,) = (tmp_path / "runs").iterdir()
    events = RunRecord.load(folder).events
    assert events[-1]["event"] == "submit-failed" and "cannot create" in events[-1]["error"]
    listed = CliRunner().invoke(cli, ["runs", "--runs-dir", str(tmp_path / "runs")])
    assert "SUBMIT FAILED: cannot create" in listed.output


def test_doctor_shows_a_workdir_with_spaces_whole(tmp_path: Path) -> None:
    from hpctriton.tools.doctor import run_doctor

    workdir = tmp_path / "my runs" / "with spaces"
    data = {**CONFIG, "clusters": {"c": {"backend": "local", "workdir": str(workdir)}}}
    checks = {c.name: c for c in run_doctor(config_from_data(data, base_dir=tmp_path), "c")}
    assert checks["workdir writable"].ok
    assert checks["workdir writable"].detail == str(workdir)
    assert stat.S_IMODE(workdir.stat().st_mode) == 0o700  # created under umask 077


def test_config_yaml_garbage_names_the_file(tmp_path: Path) -> None:
    record = make_record(tmp_path)
    (record.path / "config.yaml").write_text(yaml.safe_dump({"server": "nope"}))
    with pytest.raises(HpctritonError, match="config.yaml is damaged"):
        RunRecord.load(record.path).cluster_config()


def test_malformed_fields_inside_results_are_left_out_not_tracebacks(tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "sweep"
    shutil.copytree(Path(__file__).parent / "data" / "report_sweep", run)
    path = run / "results" / "0" / "results.json"
    doc = json.loads(path.read_text())
    doc["run"]["versions"] = ["not", "a", "map"]
    doc["run"]["checks_planned"] = 7
    for entry in doc["checks"]:
        if entry["check"] == "load" and entry["model"]:
            entry["details"]["mode"] = ["broken"]
        if entry["check"] == "keepalive":
            entry["details"]["latencies_ms"] = 3
    doc["checks"].append({"check": "infer", "status": "pass"})  # fields missing
    path.write_text(json.dumps(doc))
    runner = CliRunner()
    for args in (["report", str(run), "--json"], ["report", str(run), "--junit",
                                                  str(tmp_path / "j.xml")],
                 ["report", str(run), "--html", str(tmp_path / "r.html")],
                 ["compare", str(run), str(run.parent / "sweep"), "--json"]):
        result = runner.invoke(cli, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            args, result.exception)
    problems = " ".join(Results.from_run_dir(run).task(0).problems)
    assert "1 malformed result entry left out" in problems
    assert "run.versions is malformed" in problems

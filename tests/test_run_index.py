"""The per-user run index (issue 16, point 1): the newest run is the one you just made,
wherever its runs_dir is; `runs` lists every run; a folder that is gone leaves the index
with a note; the index never fails a command. No service is needed: run records are
written as submit writes them.

``XDG_STATE_HOME`` is a folder of each test's own (``tests/conftest.py``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from hpctriton.api import NothingCollected, Run, open_run
from hpctriton.cli import cli
from hpctriton.runs import index
from hpctriton.runs.record import RunRecord


def make_run(runs_dir: Path, run_id: str, created_at: str, *, remember: bool = True,
             jobs: list[str] | None = None) -> RunRecord:
    """A run record as `submit` leaves it (local backend), noted in the index."""
    from hpctriton.config import config_from_data
    from hpctriton.runs.record import save_config
    from hpctriton.schedulers import JobRef

    record = RunRecord(run_id=run_id, backend="local", cluster=None, host="localhost",
                       remote_dir=str(runs_dir / run_id / "bundle"), n_tasks=1, points=[{}],
                       created_at=created_at, path=runs_dir / run_id,
                       jobs=[JobRef(job_id=j, tasks=[0]) for j in (jobs or ["4522"])])
    save_config(record, config_from_data({"server": {"host": "127.0.0.1", "http_port": 1},
                                          "models": ["simple"]}))
    record.save()
    if remember:
        assert index.remember(record)
    return record


def test_state_dir_follows_xdg_state_home_else_local_state(tmp_path: Path) -> None:
    assert index.state_dir({"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "hpctriton"
    home = Path.home()
    assert index.state_dir({}) == home / ".local" / "state" / "hpctriton"
    # a relative XDG_STATE_HOME is ignored, as the specification says
    assert index.state_dir({"XDG_STATE_HOME": "rel"}) == home / ".local/state/hpctriton"


def test_tests_never_touch_the_real_state_dir(private_state_dir: Path) -> None:
    assert index.state_dir() == private_state_dir / "hpctriton"
    assert os.environ["XDG_STATE_HOME"] != str(Path.home() / ".local" / "state")


def test_the_index_is_private_and_written_whole(tmp_path: Path) -> None:
    make_run(tmp_path / "a", "20261201-100000-local-aaaa", "2026-12-01T10:00:00+00:00")
    folder = index.state_dir()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    path = folder / index.INDEX_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text())
    assert data["runs"][0]["path"] == str(tmp_path / "a" / "20261201-100000-local-aaaa")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left


def _remember_many(args: tuple[str, int]) -> None:
    root, worker = args
    for i in range(15):
        make_run(Path(root) / f"w{worker}", f"2026120{worker}-1000{i:02d}-local-{worker:04d}",
                 f"2026-12-0{worker}T10:00:{i:02d}+00:00")


def test_concurrent_writers_lose_no_entry(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_remember_many, [(str(tmp_path), w) for w in range(1, 5)])
    entries = index.read_index()
    assert len(entries) == 60
    assert len({e.path for e in entries}) == 60


def test_a_damaged_or_unwritable_index_never_fails_a_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = index.state_dir()
    folder.mkdir(parents=True)
    (folder / index.INDEX_NAME).write_text("{not json")
    assert index.read_index() == []  # with a warning
    record = make_run(tmp_path / "runs", "20261201-100000-local-aaaa",
                      "2026-12-01T10:00:00+00:00")
    assert [e.run_id for e in index.read_index()] == [record.run_id]
    # a state folder that cannot be made (a file is in its way): the entry is lost, the
    # caller goes on; lookups fall back to the default runs_dir
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "hpctriton").write_text("not a folder")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocked))
    assert index.remember(record) is False
    assert index.read_index() == []
    assert index.all_runs(also=tmp_path / "runs").records[0].run_id == record.run_id


def test_the_newest_run_is_found_wherever_its_runs_dir_is(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(tmp_path / "old-project" / "runs", "20261130-090000-local-1111",
             "2026-11-30T09:00:00+00:00")
    newest = make_run(tmp_path / "examples" / "hpctriton-runs", "20261201-120000-local-2222",
                      "2026-12-01T12:00:00+00:00")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert open_run().run_id == newest.run_id
    result = CliRunner().invoke(cli, ["status", "--no-scheduler", "--json"])
    assert json.loads(result.output)["run_id"] == newest.run_id
    # by prefix, from anywhere
    assert open_run("20261130").run_id == "20261130-090000-local-1111"
    result = CliRunner().invoke(cli, ["report", "20261130-09"])
    assert "20261130-090000-local-1111" in result.output  # nothing collected: it says so


def test_a_run_in_the_default_runs_dir_but_not_in_the_index_still_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(tmp_path / "far", "20261201-100000-local-aaaa", "2026-12-01T10:00:00+00:00")
    monkeypatch.chdir(tmp_path)
    local = make_run(tmp_path / "hpctriton-runs", "20261201-110000-local-bbbb",
                     "2026-12-01T11:00:00+00:00", remember=False)
    assert open_run().run_id == local.run_id
    result = CliRunner().invoke(cli, ["runs", "--json"])
    assert [r["run_id"] for r in json.loads(result.output)] == [
        "20261201-110000-local-bbbb", "20261201-100000-local-aaaa"]


def test_runs_lists_every_run_and_runs_dir_narrows(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_run(tmp_path / "a", "20261201-100000-local-aaaa", "2026-12-01T10:00:00+00:00")
    b = make_run(tmp_path / "b", "20261201-110000-local-bbbb", "2026-12-01T11:00:00+00:00")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["runs"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.output.index(b.run_id) < result.output.index(a.run_id)
    assert "runs_dir" in result.output  # two folders: each run says where it is
    narrowed = runner.invoke(cli, ["runs", "--runs-dir", str(tmp_path / "a"), "--json"])
    assert [r["run_id"] for r in json.loads(narrowed.output)] == [a.run_id]
    # --runs-dir narrows `status` too: b is newer, but not in that folder
    status = runner.invoke(cli, ["status", "--runs-dir", str(tmp_path / "a"),
                                 "--no-scheduler", "--json"])
    assert json.loads(status.output)["run_id"] == a.run_id


def test_a_missing_folder_is_dropped_from_the_index_with_a_note(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    kept = make_run(tmp_path / "a", "20261201-100000-local-aaaa", "2026-12-01T10:00:00+00:00")
    gone = make_run(tmp_path / "b", "20261201-110000-local-bbbb", "2026-12-01T11:00:00+00:00")
    shutil.rmtree(gone.path)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["runs", "--json"])
    assert [r["run_id"] for r in json.loads(result.stdout)] == [kept.run_id]
    assert f"run {gone.run_id} was dropped from your run index" in result.stderr
    assert [e.run_id for e in index.read_index()] == [kept.run_id]
    again = CliRunner().invoke(cli, ["runs", "--json"])
    assert "dropped" not in again.stderr  # said once
    # the newest run is then the one that is still there, with the same note
    shutil.rmtree(kept.path)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2 and "no runs yet" in result.stderr


def test_one_id_in_two_folders_is_named_not_guessed(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    make_run(tmp_path / "a", "20261201-100000-local-aaaa", "2026-12-01T10:00:00+00:00")
    make_run(tmp_path / "copy", "20261201-100000-local-aaaa", "2026-12-01T10:00:00+00:00")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["status", "20261201-100000-local-aaaa"])
    assert result.exit_code == 2
    assert "is in several folders" in result.stderr and "give the folder" in result.stderr


def test_results_before_any_collect_say_so_instead_of_an_empty_result(tmp_path: Path) -> None:
    record = make_run(tmp_path / "runs", "20261201-100000-local-aaaa",
                      "2026-12-01T10:00:00+00:00")
    with pytest.raises(NothingCollected, match=r"nothing collected yet: call run\.collect\(\)"):
        Run(record).results()
    result = CliRunner().invoke(cli, ["report", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1
    assert "nothing collected yet" in result.stderr and "collect 20261201" in result.stderr

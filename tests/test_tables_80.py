"""Every table fits an 80-column terminal without cutting a number (issue 16, point 4):
report, load, compare, status and runs tables, at rich's width forced to 80, through
the CLI (``COLUMNS=80``) and the renderers (``Console(width=80)``); and so do the lines
``hpctriton check`` prints.

``tests/data/report_demo_models`` holds the results of a real ``hpctriton check``
(health, metadata, infer, statistics on ``simple``, ``token_streamer`` and
``identity_all_types``: 28 checks) against ``hpctriton.testing.start_triton``, written
with ``--results`` and put in a run folder (its run id renamed, a ``run.json`` and a
``state.json`` beside it). Its longest model name and words such as ``max_batch_size``
made every column of the results table too wide for 80 columns: before the narrow layout
it was printed as a vertical list of 198 lines.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.table import Table

from hpctriton.cli import cli
from hpctriton.report import compare_runs
from hpctriton.report.check_lines import ResultLines
from hpctriton.report.fit import fits, fitted, needed_width
from hpctriton.report.notebook import Results
from hpctriton.report.run_tables import runs_table, status_table
from hpctriton.report.terminal import load_table, print_comparison, print_results
from hpctriton.runs.record import RunRecord
from hpctriton.runs.states import TaskStatus
from hpctriton.runs.watch import RunStatus
from hpctriton.schedulers import JobRef, JobState

DATA = Path(__file__).parent / "data"
RUNS = [DATA / "report_run_a", DATA / "report_run_b", DATA / "report_sweep"]
DEMO = DATA / "report_demo_models"


def assert_fits_80(text: str) -> None:
    """No line wider than 80, and no ellipsis anywhere: rich cuts a cell with "…"."""
    wide = [line for line in text.splitlines() if len(line) > 80]
    assert not wide, wide[:3]
    assert "…" not in text, [line for line in text.splitlines() if "…" in line][:3]


def rendered(draw, width: int = 80) -> str:  # type: ignore[no-untyped-def]
    console = Console(width=width, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    draw(console)
    return console.export_text()


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
@pytest.mark.parametrize("wide", [False, True], ids=["main", "wide"])
def test_report_tables_fit_80_columns(run: Path, wide: bool) -> None:
    text = rendered(lambda c: print_results(Results.from_run_dir(run), c, wide=wide))
    assert_fits_80(text)
    points = Results.from_run_dir(run).load_points()
    for p in points:  # every throughput and p99 is there, whole
        assert f"{p.throughput_rps:.1f}" in text or f"{p.throughput_rps:,.0f}" in text


def test_load_table_shows_concurrency_as_written_and_constant_columns_in_its_title() -> None:
    points = Results.from_run_dir(RUNS[0]).load_points()
    table = load_table(points)
    headers = [str(c.header) for c in table.columns]
    assert "protocol" not in headers and "mode" not in headers  # the same on every row
    assert str(table.title) == "load (grpc, concurrency)"
    assert headers[:2] == ["model", "concurrency"]
    text = rendered(lambda c: c.print(table))
    assert re.search(r"│\s+1 │", text) and "1.00" not in text.split("\n")[4]
    assert {"p90 ms", "max ms"} <= {str(c.header) for c in load_table(points, wide=True).columns}


@pytest.mark.parametrize("wide", [False, True], ids=["main", "wide"])
def test_compare_fits_80_columns_and_names_what_each_row_is_about(wide: bool) -> None:
    comparison = compare_runs(RUNS[:2])
    text = rendered(lambda c: print_comparison(comparison, c, wide=wide))
    assert_fits_80(text)
    if not wide:
        # the first column is never empty: each group names what it is about
        assert "load: paced_high grpc, concurrency 1" in text
        assert "A" in text and "20261201-025923-triton-4fcf" in text


def test_compare_of_three_runs_fits_80_columns() -> None:
    text = rendered(lambda c: print_comparison(compare_runs(RUNS), c))
    assert_fits_80(text)


def _status() -> tuple[RunRecord, RunStatus]:
    record = RunRecord(run_id="20261201-100000-asgc-slurm-sweep-1a2b", backend="slurm",
                       cluster="asgc-slurm", host="slurm-ui01.twgrid.org", remote_dir="/r",
                       n_tasks=3, points=[{}, {}, {}],
                       jobs=[JobRef(job_id="123456789", tasks=[0, 1, 2])])
    tasks = {
        0: TaskStatus(task=0, state=JobState.SUCCEEDED, job_id="123456789_0",
                      host="gpu-node-0123.cluster.example.org", exit_code=0,
                      reason="all checks passed"),
        1: TaskStatus(task=1, state=JobState.PENDING, job_id="123456789_1",
                      reason="pending for 612 s (max_pending_s 600) because PartitionDown: "
                             "the partition is down, which needs an administrator"),
        2: TaskStatus(task=2, state=JobState.FAILED, job_id="123456789_2", host="n2",
                      exit_code=137, reason="killed by signal 9 [/SIGKILL]"),
    }
    return record, RunStatus(tasks=tasks)


def test_status_table_fits_80_columns_and_keeps_ids_whole() -> None:
    record, status = _status()
    text = rendered(lambda c: c.print(fitted(status_table(record, status), c)))
    assert_fits_80(text)
    for job in ("123456789_0", "123456789_1", "123456789_2", "137"):
        assert job in text
    assert "[/SIGKILL]" in text  # what the scheduler said is text, not markup


def test_runs_table_fits_80_columns(tmp_path: Path) -> None:
    record, _ = _status()
    records = []
    for i, folder in enumerate(("a", "a-much-longer-folder-name/with/depth", "c")):
        records.append(RunRecord(**{**record.__dict__, "run_id": f"{record.run_id}{i}",
                                    "path": tmp_path / folder / f"r{i}", "_config": None}))
    for wide in (False, True):
        text = rendered(lambda c, w=wide: c.print(fitted(runs_table(records, wide=w), c)))
        assert_fits_80(text)
        assert "123456789" in text


def test_a_table_that_cannot_fit_becomes_a_vertical_list() -> None:
    table = Table(title="many numbers")
    for i in range(12):
        table.add_column(f"number {i}", no_wrap=True)
    table.add_row(*(f"{1234567.891 * (i + 1):,.3f}" for i in range(12)))
    console = Console(width=80)
    assert needed_width(table, console) > 80 and not fits(table, console)
    text = rendered(lambda c: c.print(fitted(table, c)))
    assert_fits_80(text)
    assert "number 11" in text and "14,814,814.692" in text


def test_cli_tables_fit_when_columns_is_80(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"COLUMNS": "80"}
    for args in (["report", str(RUNS[0])], ["report", str(RUNS[2]), "--wide"],
                 ["compare", str(RUNS[0]), str(RUNS[1])],
                 ["compare", *map(str, RUNS), "--wide"]):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code in (0, 1), result.output
        assert_fits_80(result.stdout)


# ------------------------------------------------- the results of 28 checks, narrow


def _header(text: str) -> str:
    """The results table's column header row (empty when there is no table)."""
    return next((line for line in text.splitlines() if line.startswith("┃ check")), "")


def test_28_results_at_80_columns_stay_a_table_without_protocol_and_time() -> None:
    results = Results.from_run_dir(DEMO)
    assert len(results.checks) == 28
    runner = CliRunner()
    text = runner.invoke(cli, ["report", str(DEMO)], env={"COLUMNS": "80"}).stdout
    assert_fits_80(text)
    assert len(text.splitlines()) < 90, len(text.splitlines())  # was 198, vertical
    header = _header(text).split()
    assert header == ["┃", "check", "┃", "model", "┃", "status", "┃", "message", "┃"]
    assert "(protocol and time left out to fit: --wide)" in text
    body = text.split(_header(text))[1]
    assert body.count("│ pass ") == 28  # one row per check result
    assert "│ identity_all_types │" in body  # the model column: as wide as its names
    # what a narrow table keeps is what print_results prints at that width
    assert text.rstrip("\n") == rendered(lambda c: print_results(results, c)).rstrip("\n")


def test_wide_results_show_protocol_and_time() -> None:
    runner = CliRunner()
    # at 80 columns every column does not fit: --wide shows them, one row at a time
    text = runner.invoke(cli, ["report", str(DEMO), "--wide"], env={"COLUMNS": "80"}).stdout
    assert_fits_80(text)
    blocks = re.findall(r"protocol +(\w+)", text)
    assert len(blocks) == 28 and set(blocks) == {"http", "grpc"}
    assert len(re.findall(r"time +\d+ ms", text)) == 28
    # where they fit, every column is in the table, --wide or not
    for args in (["report", str(DEMO)], ["report", str(DEMO), "--wide"]):
        wide = runner.invoke(cli, args, env={"COLUMNS": "120"}).stdout
        assert "protocol" in _header(wide) and "time" in _header(wide)
        assert "left out to fit" not in wide


def _entries() -> list[dict[str, Any]]:
    document = json.loads((DEMO / "results" / "0" / "results.json").read_text())
    return list(document["checks"])


@pytest.mark.parametrize("width", [120, 80, 60, 40, 20])
@pytest.mark.parametrize("wide", [False, True], ids=["main", "wide"])
def test_check_lines_fit_their_width_and_keep_every_word(width: int, wide: bool) -> None:
    entries = _entries()
    lines = ResultLines(width, checks=["health", "metadata", "infer", "statistics"],
                        models=["simple", "token_streamer", "identity_all_types"], wide=wide)
    for entry in entries:
        shown = lines.lines(entry)
        assert all(len(line) <= width for line in shown), shown
        words = " ".join(shown).split()
        if width >= 40:  # no word is split: each is there whole
            for word in str(entry["message"]).split():
                assert word in words, (word, shown)
    # every column needs 84 characters with 32 of message (64 with 12, --wide), the
    # narrow ones 49 (with 12): below, each result is folded whole over indented lines
    layout = lines.layout()
    assert (layout is None) == (width < (64 if wide else 49))
    assert layout is None or ("protocol" in layout.columns) == (wide or width >= 84)
    assert (lines.note() is not None) == (not wide and 49 <= width < 84)


def test_check_lines_widen_for_a_name_they_were_not_told() -> None:
    lines = ResultLines(80)
    entry = {"status": "pass", "check": "infer", "protocol": "grpc",
             "model": "a_model_name_nobody_announced", "duration_s": 0.25,
             "message": "1 output(s) ok in 250.0 ms"}
    shown = lines.lines(entry)
    assert shown == ["PASS  infer      a_model_name_nobody_announced  1 output(s) ok in 250.0 ms"]


@pytest.mark.service
def test_check_lines_fit_80_columns_at_the_command_line(triton: Any, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.chdir(tmp_path)
    models = ["simple", "token_streamer", "identity_all_types"]
    args = ["check", "--http-url", f"127.0.0.1:{triton.http_port}",
            "--grpc-url", f"127.0.0.1:{triton.grpc_port}",
            *(a for m in models for a in ("--model", m)),
            "--checks", "health,metadata,infer,statistics"]
    runner = CliRunner()
    result = runner.invoke(cli, args, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert_fits_80(result.stdout)
    lines = result.stdout.splitlines()
    assert sum(line.startswith("PASS ") for line in lines) == 28
    assert "(protocol and time left out to fit: --wide)" in lines
    assert lines[-1] == "OK: 28 passed, 0 failed, 0 errors, 0 skipped"
    # --wide keeps protocol and time on every line, still within 80 columns
    wide = runner.invoke(cli, [*args, "--wide"], env={"COLUMNS": "80"})
    assert_fits_80(wide.stdout)
    assert len(re.findall(r"^PASS +\w+ +(?:http|grpc) +\S+ +\d\.\d{3}s ", wide.stdout,
                          re.MULTILINE)) == 28
    # width unknown (no COLUMNS, not a terminal): the probe's lines, whole
    whole = runner.invoke(cli, args, env={"COLUMNS": None})
    assert any(len(line) > 80 for line in whole.stdout.splitlines())
    assert "left out to fit" not in whole.stdout
    # --json: the results document, as it was
    as_json = runner.invoke(cli, [*args, "--json"], env={"COLUMNS": "80"})
    assert len(json.loads(as_json.stdout)["checks"]) == 28

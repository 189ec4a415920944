"""Every table fits an 80-column terminal without cutting a number (issue 16, point 4):
report, load, compare, status and runs tables, at rich's width forced to 80, through
the CLI (``COLUMNS=80``) and the renderers (``Console(width=80)``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console
from rich.table import Table

from hpctriton.cli import cli
from hpctriton.report import compare_runs
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

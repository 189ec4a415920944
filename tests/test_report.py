"""Reports without a server: the HTML page, JUnit XML, the notebook view, dataframes,
plots, the load adapter and run comparisons, from the run folders ``tests/data/report_*``
that ``tests/data/make_report_fixtures.py`` made by running the real probe against real
Triton servers (its docstring says what each run holds)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from hpctriton.report import (
    compare_runs,
    comparison_json,
    junit_xml,
    write_comparison_html,
    write_html_report,
    write_junit,
)
from hpctriton.report import html as html_mod
from hpctriton.report.notebook import Results
from hpctriton.report.terminal import print_comparison, print_results
from hpctriton.results.load import load_points, point_of_entry
from hpctriton.results.measures import task_scopes
from hpctriton.results.model import (
    DATAFRAME_COLUMNS,
    LOAD_DATAFRAME_COLUMNS,
    CheckResult,
    TaskResults,
)
from hpctriton_probe.junit import results_to_junit

DATA = Path(__file__).parent / "data"
RUN_A = DATA / "report_run_a"
RUN_B = DATA / "report_run_b"
SWEEP = DATA / "report_sweep"


def _doc(folder: Path, task: int = 0) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (folder / "results" / str(task) / "results.json").read_text())
    return data


def _run_json(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "run.json").read_text())
    return data


def _raw_point(folder: Path, model: str, level: int, task: int = 0) -> dict[str, Any]:
    """A load point's details read straight from the fixture file (not through the
    adapter); ``level`` is the concurrency or the request rate."""
    for entry in _doc(folder, task)["checks"]:
        details = entry["details"]
        if (entry["check"] == "load" and entry["model"] == model
                and details.get(details.get("mode", "")) == level):
            return dict(details)
    raise KeyError((model, level))


def _tiny(message: str = "ok", status: str = "pass", check: str = "health") -> Results:
    doc = {"run": {"run_id": "r1", "task": 0, "started_at": "2026-11-20T10:00:00.000Z",
                   "ended_at": "2026-11-20T10:00:01.000Z", "interrupted": False},
           "checks": [{"check": check, "protocol": "http", "model": "m", "status": status,
                       "duration_s": 0.01, "message": message, "details": {"k": 1}}]}
    return Results.from_data(doc)


# ------------------------------------------------------------------- HTML


def _assert_self_contained(text: str) -> None:
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert "url(" not in text  # no CSS fetches either
    for src in re.findall(r'src="([^"]*)"', text):
        assert src.startswith("data:image/png;base64,"), src[:40]
    for href in re.findall(r'href="([^"]*)"', text):
        assert href.startswith("#"), href


def _pngs(text: str) -> list[bytes]:
    return [base64.b64decode(b) for b in re.findall(r'src="data:image/png;base64,([^"]+)"',
                                                    text)]


def test_html_report_is_one_self_contained_file_with_the_plots(tmp_path: Path) -> None:
    out = write_html_report(RUN_A, tmp_path / "sub" / "report.html")
    assert out == tmp_path / "sub" / "report.html"
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no side files
    text = out.read_text(encoding="utf-8")
    _assert_self_contained(text)
    images = _pngs(text)
    assert len(images) == 3  # load, per model, timeline
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000 for png in images)
    for alt in ("latency percentiles and throughput", "per model", "timeline"):
        assert alt in text
    for section in ('id="summary"', 'id="load"', 'id="models"', 'id="timeline"',
                    'id="checks"'):
        assert section in text
    assert _run_json(RUN_A)["run_id"] in text and ">OK<" in text
    assert "paced_high" in text and "local · fixtures · localhost" in text  # run.json's
    assert out.stat().st_mode & 0o044  # readable by others: a report is for sharing


def test_html_report_of_a_sweep_has_a_section_per_task_with_its_point(tmp_path: Path) -> None:
    text = write_html_report(SWEEP, tmp_path / "sweep.html").read_text()
    _assert_self_contained(text)
    assert ">FAILED<" in text
    run = json.loads((SWEEP / "run.json").read_text())
    for task, point in enumerate(run["points"]):
        start = text.index(f'id="task-{task}"')
        end = text.find('id="task-', start + 5)
        section = text[start:end if end > 0 else len(text)]
        host = point["server.host"]
        assert f"server.host={host}, models=[paced]" in section, task
    # task 3 died before the probe started: no results.json, exit code 127
    task3 = text[text.index('id="task-3"'):]
    assert "no results.json" in task3 and "exit 127" in task3
    # the task matrix links every task
    assert all(f'href="#task-{t}"' in text for t in range(4))
    # load figure per task with load results, plus the overview, models and timeline
    assert len(_pngs(text)) == 1 + 1 + 1 + 3
    assert "request rate" in text and "no results.json: the job ended (exit code 127)" in text


def test_html_escapes_what_the_server_said(tmp_path: Path) -> None:
    res = _tiny(message="<script>alert('x')</script> & more", status="fail")
    text = write_html_report(res, tmp_path / "r.html").read_text()
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in text


def test_html_report_without_matplotlib_says_so_and_has_no_images(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(html_mod, "matplotlib_available", lambda: False)
    text = write_html_report(RUN_A, tmp_path / "r.html").read_text()
    assert "<img" not in text and "pip install matplotlib" in text
    assert 'id="load"' in text  # the tables are still there


def test_html_report_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    from hpctriton.errors import RunNotFound

    with pytest.raises(RunNotFound, match="not a run folder"):
        write_html_report(tmp_path, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


# ------------------------------------------------------------------ JUnit


def test_junit_parses_and_counts_failures_and_tasks_without_results(tmp_path: Path) -> None:
    out = write_junit(SWEEP, tmp_path / "junit.xml")
    root = ET.parse(out).getroot()
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [f"hpctriton.task{t}" for t in range(4)]
    assert root.get("failures") == "5"  # 127.0.0.2: infer http + grpc, its 3 load points
    assert root.get("errors") == "1"  # task 3: no results.json
    total = sum(len(_doc(SWEEP, t)["checks"]) for t in range(3)) + 1
    assert int(root.get("tests", "0")) == total == len(list(root.iter("testcase")))
    failed = [c.get("name") for c in root.iter("testcase") if c.find("failure") is not None]
    assert failed == ["infer[http] paced", "infer[grpc] paced", *["load[grpc] paced"] * 3]
    error = next(c for c in root.iter("testcase") if c.find("error") is not None)
    assert "exit code 127" in (error.find("error").get("message") or "")  # type: ignore[union-attr]


def test_junit_of_one_task_is_the_probes_own_xml() -> None:
    doc = _doc(RUN_A)
    assert junit_xml(Results.from_data(doc)) == results_to_junit([doc])


def test_junit_counts_tasks_never_collected_as_errors(tmp_path: Path) -> None:
    res = Results.from_dir(RUN_A / "results", "x", expected_tasks=3)
    root = ET.fromstring(junit_xml(res))
    assert root.get("errors") == "2"
    assert len(root.findall("testsuite")) == 3


# --------------------------------------------------------- Results API


def test_results_ok_per_check_access_and_failures() -> None:
    sweep = Results.from_run_dir(SWEEP)
    assert not sweep.ok
    assert sweep.missing_tasks == []  # task 3 has a state.json, so it is present...
    assert not sweep.task(3).has_results and sweep.task(3).exit_code == 127  # ...but bad
    assert [f.name for f in sweep.failures] == ["infer[http] paced", "infer[grpc] paced",
                                                *["load[grpc] paced"] * 3]
    assert {f.task for f in sweep.failures} == {1}
    assert {c.task for c in sweep["infer"]} == {0, 1, 2}
    assert sweep.check_names == ["health", "metadata", "keepalive", "infer", "load",
                                 "statistics"]
    assert isinstance(sweep[0], CheckResult) and sweep[0].check == "health"
    with pytest.raises(KeyError, match="present: health"):
        sweep["metrics"]
    assert sweep.task(1).point == {"server.host": "127.0.0.2", "models": ["paced"]}
    run_a = Results.from_run_dir(RUN_A)
    assert run_a.ok and run_a.models == ["paced_high", "paced_low"]
    assert not Results.from_dir(RUN_A / "results", expected_tasks=2).ok  # task 1 missing


def test_interrupted_task_is_not_ok_even_when_its_checks_passed() -> None:
    doc = _doc(RUN_A)
    doc["run"]["interrupted"] = True
    assert not Results.from_data(doc).ok
    assert Results([TaskResults(0, _doc(RUN_A), {"exit_code": 0})]).ok
    assert not Results([TaskResults(0, _doc(RUN_A), {"exit_code": 143})]).ok


def test_repr_html_shows_verdict_counts_and_rows_escaped() -> None:
    html = _tiny(message="<b>bold</b>", status="fail")._repr_html_()
    assert "FAILED" in html and "1 fail" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert html.count("<tr>") == 2  # header + one result
    sweep_html = Results.from_run_dir(SWEEP)._repr_html_()
    assert "<th" in sweep_html and ">task<" in sweep_html  # a task column for sweeps
    assert ".plot()" in sweep_html  # load results: says how to draw them


def test_to_dataframe_has_the_documented_columns_and_sweep_keys() -> None:
    pytest.importorskip("pandas")
    res = Results.from_run_dir(SWEEP)
    df = res.to_dataframe()
    assert list(df.columns) == [*DATAFRAME_COLUMNS, "server.host", "models"]
    assert len(df) == len(res.checks)
    assert set(df["server.host"]) == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    assert set(df["models"]) == {'["paced"]'}  # JSON text: groupby works on it
    assert df.groupby("status").size().to_dict() == {"fail": 5, "pass": 46}
    load = res.load_dataframe()
    assert list(load.columns) == [*LOAD_DATAFRAME_COLUMNS, "server.host", "models"]
    row = load[(load.task == 0) & (load.load == 40)].iloc[0]
    assert row.p99_ms == _raw_point(SWEEP, "paced", 40)["latency_ms"]["p99"]
    assert row["mode"] == "request_rate" and row["server.host"] == "127.0.0.1"


def test_to_dataframe_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    with pytest.raises(ImportError, match=re.escape("pip install 'hpctriton[pandas]'")):
        Results.from_run_dir(RUN_A).to_dataframe()


def test_plot_draws_load_curves_per_model_and_falls_back_to_the_timeline() -> None:
    from matplotlib.figure import Figure

    fig = Results.from_run_dir(RUN_A).plot()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4  # two models x (latency, throughput)
    assert fig._repr_png_().startswith(b"\x89PNG")  # type: ignore[attr-defined]  # Jupyter
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert "paced_high · grpc · concurrency: latency" in titles
    assert len(Results.from_run_dir(RUN_A).plot(model="paced_low").axes) == 2
    plain = _tiny()
    assert isinstance(plain.plot(), Figure)  # no load results: the timeline
    with pytest.raises(ValueError, match="no load results"):
        plain.plot(kind="load")
    assert isinstance(Results.from_run_dir(SWEEP).plot(kind="models"), Figure)


def test_reports_import_neither_matplotlib_nor_pandas_until_drawing() -> None:
    code = ("import sys, hpctriton.results.model, hpctriton.results.compare, hpctriton.report, "
            "hpctriton.report.html, hpctriton.report.compare_html, hpctriton.report.plots\n"
            "from hpctriton.report.notebook import Results\n"
            f"r = Results.from_run_dir({str(RUN_A)!r}); r._repr_html_(); r.load_points()\n"
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
            "assert 'pandas' not in sys.modules, 'pandas imported'\n"
            "r.plot()\n"
            "assert 'matplotlib' in sys.modules\n"
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr


def test_terminal_report_lists_load_points(tmp_path: Path) -> None:
    console = Console(record=True, width=160)
    print_results(Results.from_run_dir(SWEEP), console)
    text = console.export_text()
    assert "request rate" in text and "p99 ms" in text
    assert "FAILED" in text and "tasks without results" not in text


# ------------------------------------------------------------ load adapter


def test_load_points_read_the_documented_shape() -> None:
    points = load_points(Results.from_run_dir(RUN_A))
    assert len(points) == 8
    p = next(p for p in points if p.model == "paced_high" and p.load == 8)
    raw = _raw_point(RUN_A, "paced_high", 8)
    assert (p.mode, p.protocol, p.task) == ("concurrency", "grpc", 0)
    assert p.throughput_rps == raw["throughput_rps"]
    assert p.latency_ms == raw["latency_ms"] and p.stable is True and p.errors == 0
    assert p.server["compute_infer_avg_ms"] == raw["server"]["compute_infer_avg_ms"]
    rate = load_points(Results.from_run_dir(SWEEP))
    assert {p.mode for p in rate} == {"request_rate"}
    assert [p.load for p in rate if p.task == 0] == [20, 40, 60]
    overloaded = next(p for p in rate if p.task == 0 and p.load == 60)
    assert overloaded.stable is False and overloaded.errors == 0
    broken = [p for p in rate if p.task == 1]  # every request failed
    assert [p.errors_by_kind for p in broken] == [
        _raw_point(SWEEP, "paced", level, task=1)["errors"] for level in (20, 40, 60)]
    assert all(p.errors == p.errors_by_kind["server"] > 0 for p in broken)
    assert all(p.throughput_rps == 0 and p.latency("p99") is None for p in broken)


def test_load_adapter_reads_point_entries_only() -> None:
    entries = Results.from_run_dir(SWEEP)["load"]
    setup = [e for e in entries if e.model is None]  # how each task's load ran
    assert len(setup) == 3 and all(point_of_entry(e) is None for e in setup)
    assert all(point_of_entry(e) is not None for e in entries if e.model is not None)
    # a model the check could not prepare: an entry with a model and no figures
    skipped = CheckResult(0, "load", "grpc", "sequence_echo", "skip", 0.01,
                          "sequence model: every request needs its own correlation id",
                          {"config": {"sequence_batching": True}})
    assert point_of_entry(skipped) is None and load_points([skipped]) == []


def test_task_scopes_name_only_the_sweep_keys_that_vary() -> None:
    res = Results.from_run_dir(SWEEP)
    assert task_scopes(res.tasks) == {0: "server.host=127.0.0.1", 1: "server.host=127.0.0.2",
                                      2: "server.host=127.0.0.3", 3: "server.host=127.0.0.4"}
    assert task_scopes(Results.from_run_dir(RUN_A).tasks) == {0: ""}
    same = [TaskResults(t, {}, None, {"x": 1}) for t in range(2)]
    assert task_scopes(same) == {0: "task 0", 1: "task 1"}


# ------------------------------------------------------------- comparison


def test_compare_differences_are_run_minus_baseline() -> None:
    cmp = compare_runs([RUN_A, RUN_B], labels=["triton", "priority"])
    for model in ("paced_high", "paced_low"):
        for level in (1, 2, 4, 8):
            a, b = _raw_point(RUN_A, model, level), _raw_point(RUN_B, model, level)
            row = cmp.get("p99", model=model, level=f"concurrency {level}")
            assert row.values == (a["latency_ms"]["p99"], b["latency_ms"]["p99"])
            assert row.diff(1) == pytest.approx(b["latency_ms"]["p99"] - a["latency_ms"]["p99"])
            assert row.relative(1) == pytest.approx(
                (b["latency_ms"]["p99"] - a["latency_ms"]["p99"]) / a["latency_ms"]["p99"] * 100)
            tp = cmp.get("throughput", model=model, level=f"concurrency {level}")
            assert tp.diff(1) == pytest.approx(b["throughput_rps"] - a["throughput_rps"])
    # as with priority scheduling: the high copy got faster, the low one slower
    assert cmp.get("p99", model="paced_high", level="concurrency 4").judgement(1) == "better"
    assert cmp.get("p99", model="paced_low", level="concurrency 4").judgement(1) == "worse"
    assert cmp.get("throughput", model="paced_low", level="concurrency 4").judgement(1) == \
        "worse"
    assert cmp.get("errors", model="paced_high", level="concurrency 4").judgement(1) == "same"
    infer_a = next(e for e in _doc(RUN_A)["checks"]
                   if e["check"] == "infer" and e["model"] == "paced_high"
                   and e["protocol"] == "grpc")["details"]["latency_ms"]
    infer_b = next(e for e in _doc(RUN_B)["checks"]
                   if e["check"] == "infer" and e["model"] == "paced_high"
                   and e["protocol"] == "grpc")["details"]["latency_ms"]
    assert cmp.get("latency", model="paced_high", protocol="grpc").diff(1) == \
        pytest.approx(infer_b - infer_a)
    assert not any(r.changed for r in cmp.statuses)


def test_compare_to_json_keys_differences_by_label() -> None:
    data = comparison_json(compare_runs([RUN_A, RUN_B], labels=["triton", "priority"]))
    json.dumps(data)  # plain data
    assert data["baseline"] == "triton"
    assert [r["label"] for r in data["runs"]] == ["triton", "priority"]
    row = next(m for m in data["metrics"] if m["metric"] == "p99"
               and m["model"] == "paced_high" and m["level"] == "concurrency 8")
    a, b = _raw_point(RUN_A, "paced_high", 8), _raw_point(RUN_B, "paced_high", 8)
    assert row["values"] == {"triton": a["latency_ms"]["p99"], "priority": b["latency_ms"]["p99"]}
    assert row["diff"]["priority"] == pytest.approx(b["latency_ms"]["p99"] - a["latency_ms"]["p99"])
    assert row["judgement"] == {"priority": "better"}


def test_compare_shows_status_changes_and_missing_numbers() -> None:
    good, bad = _tiny(status="pass", check="infer"), _tiny(status="fail", check="infer")
    cmp = compare_runs([good, bad, good])
    assert cmp.labels == ["r1", "r1 #2", "r1 #3"]
    changed = [r for r in cmp.statuses if r.changed]
    assert [(r.name, r.statuses) for r in changed] == [
        ("infer[http] m", ("pass", "fail", "pass"))]
    mixed = compare_runs([RUN_A, SWEEP])
    row = mixed.get("p99", model="paced_high", level="concurrency 1")
    assert row.values[1] is None and row.diff(1) is None
    with pytest.raises(ValueError, match="at least two"):
        compare_runs([RUN_A])
    with pytest.raises(ValueError, match="labels"):
        compare_runs([RUN_A, RUN_B], labels=["one"])


def test_compare_table_and_html(tmp_path: Path) -> None:
    cmp = compare_runs([RUN_A, RUN_B, SWEEP], labels=["triton", "priority", "sweep"])
    a, b = (_raw_point(run, "paced_high", 1)["latency_ms"]["p99"] for run in (RUN_A, RUN_B))
    console = Console(record=True, width=220)
    print_comparison(cmp, console)
    text = console.export_text()
    assert f"({(b - a) / a * 100:+.1f}%)" in text  # p99 at concurrency 1, beside its value
    assert "check results that differ" in text
    console = Console(record=True, width=220)
    print_comparison(cmp, console, wide=True)  # each difference in a column of its own
    text = console.export_text()
    assert "Δ priority" in text and "Δ sweep" in text
    assert abs(b - a) < 10  # shown with two decimals
    assert f"{b - a:+.2f} ms ({(b - a) / a * 100:+.1f}%)" in text
    out = write_comparison_html(cmp, tmp_path / "compare.html")
    page = out.read_text()
    _assert_self_contained(page)
    assert len(_pngs(page)) == 3  # load, per model, timelines
    for label in ("triton", "priority", "sweep", "(baseline)"):
        assert label in page
    assert 'class="better"' in page and 'class="worse"' in page
    assert "Status differs" in page

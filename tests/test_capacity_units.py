"""Capacity under a latency objective, without a server: the search on a synthetic
server model, the judgement of a step (MLPerf's early stopping, the client's validity),
the exact count over the bound in the recorder, merging ranks, the step files the ranks
agree through, the options' validation and the sentence reports lead with."""

from __future__ import annotations

import json
import math
import threading

import pytest

from hpctriton import config_from_data
from hpctriton.errors import ConfigError
from hpctriton.results.capacity import capacities
from hpctriton.results.model import Results
from hpctriton_probe.load import search as ls
from hpctriton_probe.load import stats as loadstats
from hpctriton_probe.load.generator import ModelRecorder
from hpctriton_probe.spec import LoadOptions, SpecError, from_dict

P99 = {"percentile": 99.0, "latency_ms": 100.0}


def queue_model(capacity: float, requests: int = 2000):
    """A deterministic server: below ``capacity`` req/s nothing is over the bound, above
    it half the requests are. Records every rate asked."""
    asked: list[float] = []

    def measure(rate: float) -> ls.StepFigures:
        asked.append(rate)
        over = 0 if rate <= capacity else requests // 2
        return ls.StepFigures(requests, over, {"latency_ms": 20.0 if not over else 900.0},
                              late_share=0.0, late=0, core_share=0.1)

    return measure, asked


def test_search_widens_by_doubling_then_bisects_to_the_precision() -> None:
    measure, asked = queue_model(42.0)
    capacity = ls.CapacitySearch(10, None, 5, 20).run(measure, P99)
    assert asked[:4] == [10, 20, 40, 80]           # widen x2 until the first failure
    assert asked[4:6] == [60, 50]                  # then bisect between 40 and 80
    lo, hi = capacity["bracket"]
    assert lo is not None and hi is not None
    assert lo <= 42.0 < hi and (hi - lo) / lo <= 0.05
    assert capacity["rate_per_s"] == lo and capacity["verdict"] == "VALID"
    assert capacity["met"] is True
    assert 42.0 * 0.95 <= capacity["rate_per_s"] <= 42.0
    assert [s["rate_per_s"] for s in capacity["steps"]] == asked
    assert all(s["verdict"] == ("PASS" if s["rate_per_s"] <= 42 else "FAIL")
               for s in capacity["steps"])
    assert "within 5 %" in capacity["reason"]


def test_search_never_answers_an_unmeasured_rate_and_stops_at_max_steps() -> None:
    measure, asked = queue_model(42.0)
    capacity = ls.CapacitySearch(10, None, 1, 5).run(measure, P99)
    assert len(asked) == 5
    assert capacity["rate_per_s"] in asked and capacity["rate_per_s"] <= 42.0
    assert "max_steps (5) reached" in capacity["reason"]
    assert capacity["verdict"] == "VALID"


def test_search_stops_at_max_rate_when_it_is_met() -> None:
    measure, asked = queue_model(1000.0)
    capacity = ls.CapacitySearch(10, 100, 5, 12).run(measure, P99)
    assert asked == [10, 20, 40, 80, 100]
    assert capacity["rate_per_s"] == 100 and "max_rate 100/s met" in capacity["reason"]


def test_search_with_the_first_rate_failing_has_no_answer() -> None:
    measure, asked = queue_model(5.0)
    capacity = ls.CapacitySearch(10, None, 5, 12).run(measure, P99)
    assert asked == [10]
    assert capacity["rate_per_s"] is None and capacity["met"] is False
    assert capacity["verdict"] == "VALID"
    assert ls.sentence("simple", capacity).startswith(
        "simple misses p99 ≤ 100 ms even at 10 req/s (VALID: 2,000 requests")


def test_an_invalid_step_ends_the_search_invalid_and_is_never_the_answer() -> None:
    def measure(rate: float) -> ls.StepFigures:
        late = 0.3 if rate >= 40 else 0.0  # the client falls behind from 40/s on
        return ls.StepFigures(1000, 0, {"latency_ms": 10.0}, late_share=late,
                              late=int(late * 1000), lag_p99_ms=250.0)

    capacity = ls.CapacitySearch(10, None, 5, 12).run(measure, P99)
    assert [s["verdict"] for s in capacity["steps"]] == ["PASS", "PASS", "INVALID"]
    assert capacity["verdict"] == "INVALID" and capacity["met"] is False
    assert capacity["rate_per_s"] == 20  # the last valid rate, never the invalid one
    assert "client-bound: add tasks or workers" in capacity["reason"]
    assert "(INVALID: step 2 at 40/s: client-bound" in ls.sentence("simple", capacity)


def test_judge_applies_loadgen_early_stopping_to_exact_counts() -> None:
    def verdict(requests: int, over: int) -> str:
        return ls.judge(1.0, ls.StepFigures(requests, over, {"latency_ms": 1.0}),
                        P99).verdict

    assert verdict(459, 0) == "PASS" and verdict(458, 0) == "FAIL"  # LoadGen: 459
    assert verdict(1000, 3) == "FAIL" and verdict(1001, 3) == "PASS"  # LoadGen: 1001
    assert verdict(100000, 1001) == "FAIL"  # over 1 %: the percentile is over the bound
    step = ls.judge(1.0, ls.StepFigures(600, 2, {"latency_ms": 50.0}), P99)
    assert step.needed == 838 and "needs 838 requests" in step.reason
    assert ls.default_min_requests(99) == 459 and ls.default_min_requests(90) == 44


def test_judge_calls_a_client_that_could_not_keep_the_schedule_invalid() -> None:
    late = ls.StepFigures(1000, 0, late_share=0.05, late=50, lag_p99_ms=40.0)
    step = ls.judge(10.0, late, P99)
    assert step.verdict == "INVALID" and not step.valid
    assert step.reason.startswith("client-bound: add tasks or workers")
    # one stall among a few sends is noise, not a client that cannot keep up
    assert ls.judge(10.0, ls.StepFigures(500, 0, late_share=0.02, late=2), P99).passed
    busy = ls.StepFigures(1000, 0, late_share=0.0, late=0, core_share=0.95)
    assert ls.judge(10.0, busy, P99).verdict == "INVALID"
    assert ls.judge(10.0, ls.StepFigures(0, 0), P99).verdict == "INVALID"
    assert ls.late_ms({"latency_ms": 100.0}) == 10.0 and ls.late_ms({"itl_ms": 5.0}) == 1.0


def test_step_windows_plan_enough_requests() -> None:
    assert ls.step_windows(10.0, 459, 1.0) == math.ceil(1.25 * 459 / 10)
    assert ls.step_windows(1e6, 459, 1.0) == 1
    # a small min_requests plans 3 standard deviations of a Poisson count over it
    assert ls.planned_requests(44) == 44 + 3 * math.sqrt(44)
    assert ls.step_windows(10.0, 44, 1.0) == math.ceil((44 + 3 * math.sqrt(44)) / 10)


def test_recorder_counts_answers_over_the_bound_exactly_and_ranks_merge_them() -> None:
    rec = ModelRecorder("m", 1, m0=0.0, window_s=1.0, max_windows=2, open_loop=True,
                        bounds=(0.100, None, None))
    for t0, t1 in [(0.0, 0.1), (0.0, 0.1001), (0.5, 0.7), (1.0, 1.05), (1.0, 1.9)]:
        rec.done(t0, t1, None)
    rec.done(1.0, 1.2, ("server", "500", "boom"))  # a failure is counted apart
    doc = rec.to_json(2)
    assert [w["over"] for w in doc["windows"]] == [2, 1]
    point = {"index": 0, "value": 5.0, "models": {"m": doc}, "search": {"step": 0}}
    docs = [{"format": loadstats.RANK_FORMAT, "rank": r, "ranks": 2,
             "loads": [{"load_index": 0, "points": [json.loads(json.dumps(point))]}]}
            for r in (0, 1)]
    merged = loadstats.merge_rank_docs(docs)["loads"][0]["points"][0]
    assert [w["over"] for w in merged["models"]["m"]["windows"]] == [4, 2]
    load = {"window_s": 1.0, "stability": {"windows": 3, "percent": 10}, "models": ["m"]}
    summary = loadstats.point_summary(load, merged)
    figures = ls.step_figures(merged, summary, "m", P99)
    # 10 answered, 2 failed; over: 6 answers + 2 failures
    assert (figures.requests, figures.over, figures.errors) == (12, 8, 2)
    assert summary["models"]["m"]["windows"]["used"] == [0, 1]  # a step uses every window


def test_step_board_lets_rank_0_lead_and_the_others_follow(tmp_path) -> None:
    folder = str(tmp_path / "search-0")
    lead = ls.StepBoard(folder, 0, 3, session="s1")
    followers = [ls.StepBoard(folder, r, 3, session="s1") for r in (1, 2)]
    stale = ls.StepBoard(folder, 1, 3, session="old")
    stale.report(0, {"stale": True})  # an earlier attempt's file is never taken
    seen: dict[int, list] = {1: [], 2: []}

    def follow(board: ls.StepBoard) -> None:
        k = 0
        while True:
            doc = board.next_step(k, deadline=__import__("time").monotonic() + 10)
            if doc is None:
                return
            seen[board.rank].append(doc["rate"])
            board.report(k, {"rank": board.rank, "rate": doc["rate"]})
            k += 1

    threads = [threading.Thread(target=follow, args=(b,)) for b in followers]
    for t in threads:
        t.start()
    import time

    for k, rate in enumerate([10.0, 20.0]):
        lead.announce(k, {"rate": rate, "windows": 1, "start_epoch": time.time()})
        got = lead.collect(k, time.monotonic() + 10)
        assert got == {1: {"rank": 1, "rate": rate}, 2: {"rank": 2, "rate": rate}}
    lead.finish(2)
    for t in threads:
        t.join(10)
    assert seen == {1: [10.0, 20.0], 2: [10.0, 20.0]}
    with pytest.raises(ls.BoardTimeout):
        lead.collect(5, time.monotonic() + 0.2)


SERVER = {"host": "127.0.0.1", "grpc_port": 8001}


def _config(load: dict):
    return config_from_data({"server": SERVER, "models": ["simple"], "checks": [{"load": load}]})


@pytest.mark.parametrize(("search", "extra", "words"), [
    ({"objective": {"latency_ms": 100}, "min_rate": 10}, {"request_rate": 50},
     "remove request_rate"),
    ({"objective": {"latency_ms": 100}, "min_rate": 10}, {"concurrency": 4},
     "remove concurrency"),
    ({"objective": {"latency_ms": 100}}, {}, "give min_rate or max_rate"),
    ({"objective": {"latency_ms": 100}, "min_rate": 50, "max_rate": 50}, {},
     "min_rate (50) must be below search.max_rate (50)"),
    ({"objective": {"latency_ms": 100}, "min_rate": 1, "precision_percent": 0}, {},
     "precision_percent must lie between 0 and 100"),
    ({"objective": {"percentile": 100, "latency_ms": 100}, "min_rate": 1}, {},
     "percentile must lie between 0 and 100"),
    ({"objective": {"percentile": 99}, "min_rate": 1}, {}, "give at least one bound"),
    ({"objective": {"latency_ms": 100}, "min_rate": 1, "speed": 3}, {}, "speed"),
])
def test_search_options_are_validated_in_the_probe_and_the_config(search, extra,
                                                                   words) -> None:
    with pytest.raises(SpecError, match=None) as probe_err:
        from_dict(LoadOptions, {"search": search, **extra})
    assert words in str(probe_err.value)
    with pytest.raises(ConfigError) as config_err:
        _config({"search": search, **extra})
    assert words in str(config_err.value), str(config_err.value)


def test_a_valid_search_config_builds_and_picks_its_rates() -> None:
    cfg = _config({"search": {"objective": {"latency_ms": 100}, "max_rate": 800}})
    opts = cfg.checks[0].options
    assert opts.mode == "request_rate" and opts.points() == []
    assert opts.search.start_rate() == 50.0 and opts.search.objective.bounds_ms() == {
        "latency_ms": 100.0}


def test_sentence_and_host_side_reading_of_capacity_entries() -> None:
    measure, _ = queue_model(42.0, requests=2400)
    capacity = ls.CapacitySearch(10, None, 5, 12).run(measure, P99)
    capacity["over_bound"] = 3
    text = ls.sentence("simple", capacity)
    assert text == ("simple sustains 41.25 req/s with p99 ≤ 100 ms (VALID: 2,400 requests, "
                    "3 over the bound)")
    doc = {"run": {}, "summary": {}, "checks": [
        {"check": "load", "protocol": "grpc", "model": "simple", "status": "pass",
         "duration_s": 0.0, "message": text,
         "details": {"capacity": capacity, "tasks": 3, "load_index": 0,
                     "protocol": "grpc", "sentence": text}}]}
    found = capacities(Results.from_data(doc))
    assert len(found) == 1 and found[0].sentence == text and found[0].tasks == 3
    assert found[0].bound_ms == 100.0 and len(found[0].steps) == len(capacity["steps"])


# ------------------------------------------------- the step entries, check, the figure


def _capacity_doc(capacity: dict, model: str = "simple") -> dict:
    """A results document with one step entry per step and the capacity entry, as the
    load check writes them."""
    text = ls.sentence(model, capacity)
    checks = [{"check": "load", "protocol": "grpc", "model": model, "status": "pass",
               "duration_s": 1.0,
               "message": ls.step_text(s, capacity["objective"]) + "; rate …",
               "details": {"search_step": s, "request_rate": s["rate_per_s"]}}
              for s in capacity["steps"]]
    checks.append({"check": "load", "protocol": "grpc", "model": model,
                   "status": "pass" if capacity["met"] else "fail", "duration_s": 0.0,
                   "message": text, "details": {"capacity": capacity, "tasks": 1,
                                                "load_index": 0, "protocol": "grpc",
                                                "sentence": text}})
    return {"run": {}, "summary": {}, "checks": checks}


def test_step_entries_read_a_step_over_the_objective_as_the_search_expects() -> None:
    measure, _ = queue_model(42.0)
    capacity = ls.CapacitySearch(10, None, 5, 12).run(measure, P99)
    by_rate = {s["rate_per_s"]: s for s in capacity["steps"]}
    over = ls.step_text(by_rate[80.0], P99)
    assert over == ("search step 3 at 80 req/s: p99 900.0 ms > 100 ms; 1000 of 2000 requests "
                    "over the bound (over the objective, as a search expects: it narrows "
                    "below 80 req/s)")
    within = ls.step_text(by_rate[40.0], P99)
    assert within.startswith("search step 2 at 40 req/s: p99 20.0 ms ≤ 100 ms; 0 of 2000 ")
    assert within.endswith("(within the objective: the answer is at least 40 req/s)")
    assert "FAIL" not in over and "PASS" not in within
    # too few requests to support the claim: counted as over, said so
    few = ls.judge(30.0, ls.StepFigures(40, 0, {"latency_ms": 50.0}), P99).to_json(1, P99)
    assert few["verdict"] == "FAIL"
    assert "too few to claim p99 within the bound at 99 % confidence (early stopping " \
           "needs 459): counted as over the objective" in ls.step_text(few, P99)
    late = ls.judge(30.0, ls.StepFigures(1000, 0, late_share=0.05, late=50),
                    P99).to_json(4, P99)
    assert ls.step_text(late, P99).startswith(
        "search step 4 at 30 req/s: INVALID, not the server's capacity: client-bound")
    # a TTFT and ITL objective: every bound compared
    stream = {"percentile": 90.0, "ttft_ms": 150.0, "itl_ms": 50.0}
    step = ls.judge(20.0, ls.StepFigures(100, 0, {"ttft_ms": 80.0, "itl_ms": 6.0}),
                    stream).to_json(0, stream)
    assert "TTFT p90 80.0 ms ≤ 150 ms, ITL p90 6.0 ms ≤ 50 ms" in ls.step_text(step, stream)


def test_check_prints_the_capacity_sentence_before_the_verdict(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from hpctriton.cli import cli
    from hpctriton.tools import check as tools_check

    measure, _ = queue_model(42.0, requests=2400)
    capacity = ls.CapacitySearch(10, None, 5, 12).run(measure, P99)
    doc = _capacity_doc(capacity)
    seen: list = []

    def run_tasks(tasks, *, on_result=None, **kwargs):  # the probe's run, from a fixture
        seen.append([t.checks[0].name for t in tasks])
        for entry in doc["checks"]:
            if on_result is not None:
                on_result(entry)
        return [doc]

    monkeypatch.setattr(tools_check, "run_tasks", run_tasks)
    path = tmp_path / "capacity.yaml"
    path.write_text(json.dumps({"server": SERVER, "models": ["simple"], "checks": [
        {"load": {"search": {"objective": {"latency_ms": 100}, "min_rate": 10}}}]}))
    result = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert seen == [["load"]], result.output
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    text = ls.sentence("simple", capacity)
    assert text.startswith("simple sustains 41.25 req/s with p99 ≤ 100 ms (VALID")
    assert lines[-2:] == [text, "OK: 10 passed, 0 failed, 0 errors, 0 skipped"]
    # the step entries' lines say what a step over the objective means
    assert any("at 80 req/s: p99 900.0 ms > 100 ms" in ln and "as a search expects" in ln
               for ln in lines[:-2])
    # no answer: the sentence says so, and check exits 1
    doc = _capacity_doc(ls.CapacitySearch(10, None, 5, 12).run(queue_model(5.0)[0], P99))
    result = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-2].startswith(
        "simple misses p99 ≤ 100 ms even at 10 req/s (VALID")


def test_the_html_capacity_section_draws_the_search_with_its_bound() -> None:
    pytest.importorskip("matplotlib")
    from hpctriton.report.capacity_html import capacity_section
    from hpctriton.report.capacity_plots import capacity_figure

    measure, _ = queue_model(42.0, requests=2400)
    capacity = ls.CapacitySearch(10, None, 5, 12).run(measure, P99)
    found = capacities(Results.from_data(_capacity_doc(capacity)))
    page = capacity_section(found, figures=True, many=False)
    assert page.count("<img") == 1 and 'src="data:image/png;base64,' in page
    assert 'alt="capacity search: the percentile at each rate tried, with the bound"' in page
    assert "simple sustains 41.25 req/s with p99 ≤ 100 ms" in page
    assert "<h3>simple (p99 ≤ 100 ms)</h3>" in page
    fig = capacity_figure(found)
    [ax] = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "bound 100 ms" in labels and "answer 41.25/s" in labels
    assert {"pass", "fail"} <= set(labels)
    bound = [ln for ln in ax.get_lines() if ln.get_label() == "bound 100 ms"]
    assert len(bound) == 1 and list(bound[0].get_ydata()) == [100.0, 100.0]
    assert ax.get_ylabel() == "p99 latency (ms)"
    # without figures: no image, the sentence and the table still there
    bare = capacity_section(found, figures=False, many=False)
    assert "<img" not in bare and "simple sustains 41.25 req/s" in bare


def test_compare_shows_each_runs_capacity_answer() -> None:
    import io

    from rich.console import Console

    from hpctriton.report.compare_json import comparison_json
    from hpctriton.report.terminal import print_comparison
    from hpctriton.results.compare import compare_runs

    def run(capacity_rps: float) -> Results:
        found = ls.CapacitySearch(10, None, 5, 12).run(queue_model(capacity_rps)[0], P99)
        return Results.from_data(_capacity_doc(found))

    cmp = compare_runs([run(42.0), run(21.0)], labels=["triton", "priority"])
    row = cmp.get("capacity", model="simple", level="p99 ≤ 100 ms")
    assert row.values == (41.25, 20.625) and row.better == "higher"
    assert row.judgement(1) == "worse"
    doc = comparison_json(cmp)
    [found] = [m for m in doc["metrics"] if m["section"] == "capacity"]
    assert found["values"] == {"triton": 41.25, "priority": 20.625}
    assert found["unit"] == "req/s" and found["level"] == "p99 ≤ 100 ms"
    assert doc["metrics"][0]["section"] == "capacity"  # the answer first
    out = io.StringIO()
    print_comparison(cmp, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "capacity: simple grpc, p99 ≤ 100 ms" in text
    assert "41.2 req/s" in text and "20.6 req/s (-50.0%)" in text
    # a run without an answer (INVALID or none met) shows it as missing
    none = ls.CapacitySearch(10, None, 5, 12).run(queue_model(5.0)[0], P99)
    cmp = compare_runs([run(42.0), Results.from_data(_capacity_doc(none))])
    assert cmp.get("capacity", model="simple", level="p99 ≤ 100 ms").values == (41.25, None)

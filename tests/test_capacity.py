"""Capacity under a latency objective against the real Triton (the demo model ``paced``:
one instance, 20 ms per request, no batching) and through the real Slurm with three
tasks: the answer lies below 1/s and within the precision of the rate where the queue
breaks the bound, the steps show the bound crossed, a client that cannot keep its
schedule is INVALID (exit 1 of the probe and of ``hpctriton check``), and with
``tasks: 3`` every step's figures are the three ranks' merged."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from e2e import make_config
from fixtures_triton import probe_task

from hpctriton.api import Run, submit
from hpctriton.report.html import html_report
from hpctriton.report.summary import capacity_lines
from hpctriton.results.capacity import capacities
from hpctriton.testing import TritonServer
from hpctriton_probe.load import search as ls
from hpctriton_probe.results import exit_code
from hpctriton_probe.runner import run_task

pytestmark = pytest.mark.service

PACED_SERVICE_S = 0.02  # hpctriton/demo_models/paced: 20 ms per request, one at a time
SHORT = {"warmup_s": 0.5, "window_s": 1.0}


def capacity_entries(results: dict) -> list[dict]:
    return [e for e in results["checks"] if "capacity" in e["details"]]


def md1_rate(service_s: float, percentile: float, bound_s: float) -> float:
    """The highest Poisson rate at which an M/D/1 queue (one server, fixed service time
    ``service_s``) keeps ``percentile`` of its sojourn times within ``bound_s``: Erlang's
    waiting-time distribution P(W <= t) = (1 - rho) sum_{k <= t/s} (lam (k s - t))^k /
    k! exp(-lam (k s - t)), bisected on the rate."""
    def within(lam: float) -> float:
        rho = lam * service_s
        t = bound_s - service_s
        total = sum((lam * (k * service_s - t)) ** k / math.factorial(k)
                    * math.exp(-lam * (k * service_s - t))
                    for k in range(int(t / service_s) + 1))
        return (1 - rho) * total

    lo, hi = 1e-6, (1 - 1e-9) / service_s
    for _ in range(60):
        mid = (lo + hi) / 2
        if within(mid) >= percentile:
            lo = mid
        else:
            hi = mid
    return lo


def simulated_answers(service_s: float, overhead_s: float, search: dict, *, runs: int = 400,
                      warmup_s: float = SHORT["warmup_s"], window_s: float = SHORT["window_s"],
                      seed: int = 14) -> list[float]:
    """The answers the search itself (``CapacitySearch`` and ``judge``: the same widening,
    bisection, step lengths and early-stopping rule) gives on an ideal M/D/1 queue, in
    ``runs`` searches: each step Poisson arrivals at its rate from an empty queue for
    ``warmup_s`` plus its windows, one server with the fixed service time ``service_s``,
    ``overhead_s`` added to every latency (client and network), a request counted in the
    window its answer ends in, as the recorder counts it. The probe's Poisson process is
    seedless; a seeded generator makes the distribution of its answers reproducible.
    0 stands for "no rate met the objective"."""
    objective = search["objective"]
    bound_s = objective["latency_ms"] / 1000.0
    share = objective["percentile"] / 100.0
    min_requests = ls.default_min_requests(objective["percentile"])
    rng = np.random.default_rng(seed)

    def measure(rate: float) -> ls.StepFigures:
        end = warmup_s + ls.step_windows(rate, min_requests, window_s) * window_s
        arrivals = np.sort(rng.uniform(0.0, end, rng.poisson(rate * end)))
        i = np.arange(len(arrivals))
        # one server, fixed service: d_i = max(a_i, d_{i-1}) + s, in closed form
        ends = (i + 1) * service_s + np.maximum.accumulate(arrivals - i * service_s)
        ends = ends + overhead_s
        counted = (ends >= warmup_s) & (ends < end)
        sojourn = (ends - arrivals)[counted]
        value = float(np.quantile(sojourn, share)) * 1000.0 if len(sojourn) else None
        return ls.StepFigures(len(sojourn), int((sojourn > bound_s).sum()),
                              {"latency_ms": value}, late_share=0.0, late=0)

    answers = []
    for _ in range(runs):
        found = ls.CapacitySearch(search["min_rate"], search.get("max_rate"),
                                  search["precision_percent"],
                                  search["max_steps"]).run(measure, objective)
        answers.append(found["rate_per_s"] or 0.0)
    return answers


def run_capacity(triton: TritonServer, tmp_path: Path, model: str, load: dict,
                 attempts: int = 3) -> tuple[dict, dict, Path]:
    """A search through the probe; run again (at most ``attempts`` in all) only when
    its verdict is INVALID for a client-bound step: on this shared 2-core machine (load
    average 8 to 12 while other tests run) the client's own sends are sometimes more
    than 10 ms late at 10-20 req/s (5.7 % and 11.1 % of them in two runs of 3): the
    machine's condition, not the server's answer, which the search rightly refuses to
    give then. ``test_a_client_that_cannot_keep_its_schedule_...`` tests that verdict."""
    for attempt in range(attempts):
        out = tmp_path / f"attempt-{attempt}"
        task = probe_task(triton, models=[model], checks=[("load", load)])
        results = run_task(task, str(out), run_id="capacity")
        [entry] = capacity_entries(results)
        capacity = entry["details"]["capacity"]
        if not (capacity["verdict"] == "INVALID" and "client-bound" in capacity["reason"]):
            break
    return results, entry, out


def test_paced_model_capacity_lies_below_one_over_s_with_the_bound_crossed(
        triton: TritonServer, tmp_path: Path) -> None:
    search = {"objective": {"percentile": 90, "latency_ms": 100}, "min_rate": 10,
              "precision_percent": 10, "max_steps": 8}
    results, entry, out = run_capacity(triton, tmp_path, "paced", {**SHORT, "search": search})
    capacity = entry["details"]["capacity"]
    steps = capacity["steps"]
    assert capacity["verdict"] == "VALID", capacity["reason"]
    assert entry["status"] == "pass" and exit_code(results) == 0, entry["message"]
    rate = capacity["rate_per_s"]
    # below 1/s: one instance serving 20 ms per request takes at most 50 requests/s
    assert rate is not None and rate < 1 / PACED_SERVICE_S
    # the steps show the bound crossed: some rate within it, a higher one over it
    passed = [s for s in steps if s["verdict"] == "PASS"]
    failed = [s for s in steps if s["verdict"] == "FAIL"]
    assert passed and failed
    assert all(s["percentile_ms"] <= 100 for s in passed)
    assert any(s["percentile_ms"] > 100 for s in failed)
    assert min(s["rate_per_s"] for s in failed) > rate == max(s["rate_per_s"] for s in passed)
    # the answer is within the precision of the lowest rate that broke the bound (or
    # the search ran out of steps, and says so)
    lo, hi = capacity["bracket"]
    assert lo == rate and hi is not None
    assert (hi - lo) / lo <= 0.10 or "max_steps (8) reached" in capacity["reason"]
    # and what the queue allows. The queue: one server whose fixed service time is the
    # server's own (compute_infer_avg of the steps that met the objective: 20.7-23.3 ms
    # observed, contention on this machine included), plus the client's and network's
    # overhead: the median latency of the first step less the service time (the median
    # of an M/D/1 queue below 50 % load waits nothing: 3-4 ms observed).
    points = [e for e in results["checks"] if e["model"] == "paced"
              and "search_step" in e["details"]]
    service_ms = [e["details"]["server"]["compute_infer_avg_ms"] for e in points
                  if e["details"]["search_step"]["verdict"] == "PASS"]
    service_s = max(PACED_SERVICE_S, sum(service_ms) / len(service_ms) / 1000.0)
    overhead_s = max(0.0, points[0]["details"]["latency_ms"]["p50"] / 1000.0 - service_s)
    # The rate at which that queue's steady state keeps p90 <= 100 ms (Erlang), and the
    # answers this very search gives on it (400 simulated searches with these step
    # lengths, precision and early stopping): for s = 21.5 ms, c = 4 ms the steady state
    # allows 33.6/s, the searches answer 17.5-42.5/s (1st-99th percentile; median 30).
    # That spread is the search's own at 44 requests a step and is not noise: a step
    # of ~55 Poisson requests sees from 0 to several over the bound near the answer, and
    # with 1 over p90 early stopping needs 64 requests (so it FAILs), with too few
    # arrivals even 0 over FAILs. Short steps from an empty queue see less queueing than
    # the steady state, hence answers above it. The answer must lie in that band,
    # widened by NOISE for this shared 2-core machine (load average 8-12 while other
    # tests run): its latency tail beyond the queue, p90 48-63 ms at 10/s where the
    # queue gives ~35 ms, lowers the answer; 15 % covers it (answers of 25/s were seen
    # where the band starts at 17.5/s). Tighter needs longer steps (min_requests 100
    # gives 24-41/s but doubles the test's length).
    steady = md1_rate(service_s, 0.90, 0.100 - overhead_s)
    answers = [a for a in simulated_answers(service_s, overhead_s, search) if a > 0]
    band = np.quantile(answers, [0.01, 0.99])
    noise = 0.15
    figures = (rate, steady, band.tolist(), service_s, overhead_s)
    assert band[0] * (1 - noise) <= rate <= band[1] * (1 + noise), figures
    # every step's figures: exact request counts, the early-stopping need, the send lag
    for s in steps:
        assert s["requests"] > 0 and s["needed"] >= 44 and s["late_share"] is not None
    point_entries = [e for e in results["checks"] if "search_step" in e["details"]]
    assert [e["details"]["request_rate"] for e in point_entries] == \
        [s["rate_per_s"] for s in steps]
    rank = json.loads((out / "load" / "rank-0.json").read_text())
    assert [p["search"]["verdict"] for p in rank["loads"][0]["points"]] == \
        [s["verdict"] for s in steps]


STREAMER_PREFILL_S = 0.02  # hpctriton/demo_models/token_streamer: prefill_s
STREAMER_TOKEN_S = 0.005  # token_s; slots 1: one request at a time
STREAMER_TOKENS = 2  # max_tokens the test asks: prefill, then one more token


def test_streaming_capacity_under_ttft_and_itl_bounds_lies_below_what_the_slot_allows(
        triton: TritonServer, tmp_path: Path) -> None:
    # the decoupled token_streamer serves one request at a time: prefill, then a token
    # every token_s; with 2 tokens a request holds its slot 25 ms: at most 40 req/s
    slot_rate = 1.0 / (STREAMER_PREFILL_S + (STREAMER_TOKENS - 1) * STREAMER_TOKEN_S)
    objective = {"percentile": 90, "ttft_ms": 150, "itl_ms": 150}
    search = {"objective": objective, "min_rate": 10, "precision_percent": 20,
              "max_steps": 6}
    load = {**SHORT, "inputs": {"max_tokens": STREAMER_TOKENS}, "search": search}
    results, entry, _ = run_capacity(triton, tmp_path, "token_streamer", load)
    capacity = entry["details"]["capacity"]
    assert capacity["verdict"] == "VALID", capacity["reason"]
    assert entry["status"] == "pass" and exit_code(results) == 0, entry["message"]
    assert entry["message"].startswith("token_streamer sustains ")
    assert "with p90 TTFT ≤ 150 ms and ITL ≤ 150 ms (VALID: " in entry["message"]
    rate = capacity["rate_per_s"]
    assert rate is not None and rate < slot_rate, (rate, slot_rate)
    steps = capacity["steps"]
    # both bounds measured at every step; the first (TTFT) is the step's percentile
    for s in steps:
        assert set(s["percentiles_ms"]) == {"ttft_ms", "itl_ms"}, s
        assert s["percentile_ms"] == s["percentiles_ms"]["ttft_ms"]
    # a passing and a failing step bracket the answer: TTFT within the bound below it,
    # the queue's TTFT over it above (a prefill of 20 ms, so the queue is what breaks it)
    passed = [s for s in steps if s["verdict"] == "PASS"]
    failed = [s for s in steps if s["verdict"] == "FAIL"]
    assert max(s["rate_per_s"] for s in passed) == rate < min(s["rate_per_s"]
                                                              for s in failed)
    assert all(STREAMER_PREFILL_S * 1000 <= s["percentiles_ms"]["ttft_ms"] <= 150
               and s["percentiles_ms"]["itl_ms"] <= 150 for s in passed)
    # every failing step is over the TTFT bound, or had too few requests for early
    # stopping to support the claim with the few over it (seen: 1 of 62 over needs 64)
    for s in failed:
        assert s["percentiles_ms"]["ttft_ms"] > 150 or s["requests"] < s["needed"], s
    lo, hi = capacity["bracket"]
    assert lo == rate and hi == min(s["rate_per_s"] for s in failed)
    # the step entries say what a step over the objective means, and pass
    stepped = [e for e in results["checks"] if "search_step" in e["details"]]
    assert [e["status"] for e in stepped] == ["pass"] * len(steps)
    for e in stepped:
        if e["details"]["search_step"]["verdict"] == "FAIL":
            assert "as a search expects: it narrows below" in e["message"] \
                or "counted as over the objective" in e["message"], e["message"]


def test_a_client_that_cannot_keep_its_schedule_is_invalid_and_exits_1(
        triton: TritonServer, tmp_path: Path) -> None:
    # 20,000 requests/s from one worker process: far beyond what one Python event loop
    # sends on this machine (a few thousand per second), so the sends fall behind
    load = {"warmup_s": 0.2, "window_s": 0.5, "workers": 1,
            "search": {"objective": {"percentile": 99, "latency_ms": 100},
                       "min_rate": 20000, "max_steps": 1, "min_requests": 100}}
    config = {"server": {"host": "127.0.0.1", "grpc_port": triton.grpc_port,
                         "http_port": triton.http_port},
              "models": ["simple"], "checks": [{"load": load}], "probe": {"timeout_s": 10}}
    path = tmp_path / "capacity.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "hpctriton", "check", "-c", str(path),
                           "--results", str(out)], capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    results = json.loads(out.read_text())
    [entry] = capacity_entries(results)
    capacity = entry["details"]["capacity"]
    assert capacity["verdict"] == "INVALID" and entry["status"] == "fail"
    assert capacity["rate_per_s"] is None and not capacity["met"]
    assert "client-bound: add tasks or workers" in capacity["reason"]
    [step] = capacity["steps"]
    assert step["verdict"] == "INVALID" and step["late_share"] > 0.01
    assert "(INVALID: step 0 at 20,000/s: client-bound" in entry["message"]
    assert "client-bound" in proc.stdout


def test_capacity_from_three_slurm_tasks_comes_from_the_merged_ranks(tmp_path, sshd, slurm,
                                                                      triton) -> None:
    load = {**SHORT, "tasks": 3,
            "search": {"objective": {"percentile": 90, "latency_ms": 100}, "min_rate": 9,
                       "max_steps": 3, "precision_percent": 10}}
    config = make_config(tmp_path, triton, sshd, models=["paced"], checks=[{"load": load}],
                         cluster={"env": {"HPCTRITON_LOAD_LEAD_S": "6"}})
    run = submit(config, "test")
    assert isinstance(run, Run)
    with run:
        status = run.wait(timeout_s=300, hint_interval_s=2.0, hint_interval_max_s=4.0)
        assert status.done, status.counts()
        run.collect()
        results = run.results()
        [found] = capacities(results)
        assert found.tasks == 3 and found.verdict == "VALID", found.reason
        assert results.ok, [(c.check, c.model, c.status, c.message)
                            for c in results.checks if not c.ok]
        task_dir = run.path / "results" / "0"
        ranks = [json.loads((task_dir / "load" / f"rank-{r}.json").read_text())
                 for r in range(3)]
        raw = json.loads((task_dir / "results.json").read_text())
        [entry] = capacity_entries(raw)
        steps = entry["details"]["capacity"]["steps"]
        assert len(steps) == 3
        for k, step in enumerate(steps):
            per_rank = []
            for doc in ranks:
                point = doc["loads"][0]["points"][k]
                assert point["search"]["rate"] == step["rate_per_s"]
                data = point["models"]["paced"]
                per_rank.append(sum(w["ok"] + sum(w["errors"].values())
                                    for w in data["windows"]) + data["unanswered"])
            # every rank took part, and the step's count is all of theirs together
            assert all(n > 0 for n in per_rank), per_rank
            assert step["requests"] == sum(per_rank), (step, per_rank)
            assert step["requests"] > max(per_rank)
        # the merged per-step entries (collect) say the same verdicts
        merged = [c for c in results.checks if "search_step" in c.details]
        assert [c.details["search_step"]["verdict"] for c in merged] == \
            [s["verdict"] for s in steps]
        assert all("3 tasks merged" in c.message for c in merged)
        assert capacity_lines(results)[0].startswith("paced sustains ")
        page = html_report(results)
        assert 'id="capacity"' in page and "paced sustains" in page

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

import pytest
import yaml
from e2e import make_config
from fixtures_triton import probe_task

from hpctriton.api import Run, submit
from hpctriton.report.html import html_report
from hpctriton.report.summary import capacity_lines
from hpctriton.results.capacity import capacities
from hpctriton.testing import TritonServer
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


def test_paced_model_capacity_lies_below_one_over_s_with_the_bound_crossed(
        triton: TritonServer, tmp_path: Path) -> None:
    search = {"objective": {"percentile": 90, "latency_ms": 100}, "min_rate": 10,
              "precision_percent": 10, "max_steps": 8}
    task = probe_task(triton, models=["paced"], checks=[("load", {**SHORT, "search": search})])
    results = run_task(task, str(tmp_path), run_id="capacity")
    [entry] = capacity_entries(results)
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
    # and what the queue allows: an M/D/1 queue with the server's own time per request
    # (its statistics, contention on this machine included) keeps p90 <= 100 ms up to
    # md1_rate(); short steps see less queueing than the steady state, the early-stopping
    # rule is stricter than the percentile: generous factors either way
    service_ms = [e["details"]["server"]["compute_infer_avg_ms"] for e in results["checks"]
                  if e["model"] == "paced" and "search_step" in e["details"]
                  and e["details"]["search_step"]["verdict"] == "PASS"]
    service_s = max(PACED_SERVICE_S, sum(service_ms) / len(service_ms) / 1000.0)
    allowed = md1_rate(service_s, 0.90, 0.100)
    assert 0.4 * allowed <= rate <= 1.25 / service_s, (rate, allowed, service_s)
    # every step's figures: exact request counts, the early-stopping need, the send lag
    for s in steps:
        assert s["requests"] > 0 and s["needed"] >= 44 and s["late_share"] is not None
    point_entries = [e for e in results["checks"] if "search_step" in e["details"]]
    assert [e["details"]["request_rate"] for e in point_entries] == \
        [s["rate_per_s"] for s in steps]
    rank = json.loads((tmp_path / "load" / "rank-0.json").read_text())
    assert [p["search"]["verdict"] for p in rank["loads"][0]["points"]] == \
        [s["verdict"] for s in steps]


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

"""``workers: N | auto`` and the client's self-check: how the load is split (the merged
open-loop arrivals are the configured process), how many workers ``auto`` means, the
self-check's rule, and a real load from two worker processes whose merged count equals
the server's."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest
from fixtures_triton import probe_task, server_success

from hpctriton.testing import TritonServer
from hpctriton_probe.load import stats as loadstats
from hpctriton_probe.load import workers as loadworkers
from hpctriton_probe.load.generator import schedule_times
from hpctriton_probe.runner import run_task
from hpctriton_probe.spec import LoadOptions, SpecError


def test_concurrency_is_split_as_evenly_as_it_goes() -> None:
    assert loadworkers.split_concurrency(5, 2) == [3, 2]
    assert loadworkers.split_concurrency(2, 4) == [1, 1, 0, 0]
    assert sum(loadworkers.split_concurrency(97, 7)) == 97


@pytest.mark.parametrize("workers, ranks", [(3, 1), (4, 2)])
def test_constant_schedules_of_all_workers_and_ranks_interleave_evenly(workers: int,
                                                                       ranks: int) -> None:
    """Every rank asks ``rate`` per task, split over its workers: the merged send
    times of all of them are evenly spaced at ``ranks * rate``."""
    rate = 120.0
    merged = []
    for rank in range(ranks):
        for w in range(workers):
            times = schedule_times(0.0, rate / workers, "constant",
                                   phase=loadworkers.worker_phase(w, workers, rank, ranks))
            merged += [next(times) for _ in range(50)]
    merged.sort()
    gaps = [b - a for a, b in zip(merged, merged[1:], strict=False)]
    assert min(gaps) == pytest.approx(max(gaps)) == pytest.approx(1 / (ranks * rate))


def test_poisson_streams_of_the_workers_merge_into_poisson_at_the_full_rate() -> None:
    rate, workers, horizon = 400.0, 4, 50.0
    merged = []
    for w in range(workers):
        times = schedule_times(0.0, rate / workers, "poisson", seed=(0, 0, 0, w))
        t = next(times)
        while t < horizon:
            merged.append(t)
            t = next(times)
    merged.sort()
    gaps = [b - a for a, b in zip(merged, merged[1:], strict=False)]
    assert len(merged) / horizon == pytest.approx(rate, rel=0.03)
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(1 / rate, rel=0.03)
    assert statistics.pstdev(gaps) / mean == pytest.approx(1.0, abs=0.05)  # exponential


def test_auto_is_the_cores_minus_one_capped_by_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)))
    assert loadworkers.auto_workers({})[0] == 15
    count, how = loadworkers.auto_workers({"SLURM_CPUS_PER_TASK": "4"})
    assert count == 4 and "SLURM_CPUS_PER_TASK=4" in how
    assert loadworkers.auto_workers({"SLURM_CPUS_PER_TASK": "64"})[0] == 15
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert loadworkers.auto_workers({})[0] == 1
    assert loadworkers.resolve(3) == (3, "as configured")


@pytest.mark.parametrize("value", [0, -1, "many", True, 1.5])
def test_workers_option_is_validated(value: object) -> None:
    with pytest.raises(SpecError, match="workers"):
        LoadOptions(workers=value)  # type: ignore[arg-type]
    assert LoadOptions(workers="auto").workers == "auto"


def test_self_check_warns_when_a_worker_needs_most_of_a_core() -> None:
    warmup = {"cpu_s": 0.05, "wall_s": 1.0, "answered": 1000}  # 50 us per request
    calm = loadstats.self_check("request_rate", 20000.0, 2, [warmup, warmup])
    assert calm["cpu_us_per_request"] == 50 and calm["core_share"] == 0.5
    assert not calm["client_bound"] and "warning" not in calm
    busy = loadstats.self_check("request_rate", 40000.0, 2, [warmup, warmup])
    assert busy["client_bound"] and "raise workers" in busy["warning"]
    closed = loadstats.self_check("concurrency", 8, 1, [{"cpu_s": 0.9, "wall_s": 1.0,
                                                         "answered": 9000}])
    assert closed["client_bound"] and closed["core_share"] == 0.9
    assert loadstats.client_bound({"self_check": busy})
    assert loadstats.client_bound({"ranks": {"1": {"self_check": busy}}})
    assert not loadstats.client_bound({"self_check": calm})
    none = loadstats.self_check("concurrency", 8, 1, [None], (2.0, 4.0, 1000))
    assert none["source"] == "point" and none["core_share"] == 0.5


@pytest.mark.service
@pytest.mark.parametrize("options", [
    {"protocol": "grpc", "concurrency": [3]},
    {"protocol": "http", "request_rate": [300], "schedule": "poisson"},
    {"protocol": "grpc", "streaming": True, "request_rate": [200]},
], ids=["grpc-closed", "http-open", "grpc-stream-open"])
def test_two_workers_count_what_the_server_counts(triton: TritonServer, tmp_path: Path,
                                                  options: dict) -> None:
    fast = {"warmup_s": 0.2, "window_s": 0.3, "stability": {"windows": 2, "percent": 50,
                                                            "max_trials": 3}}
    before = server_success(triton, "simple")
    results = run_task(probe_task(triton, checks=[("load", {**fast, **options,
                                                            "workers": 2})]),
                       str(tmp_path), run_id="workers")
    after = server_success(triton, "simple")
    setup = [e for e in results["checks"] if e["model"] is None][0]
    assert setup["details"]["workers"]["count"] == 2
    got = [e for e in results["checks"] if e["model"] == "simple"]
    assert got and all(e["status"] == "pass" for e in got), [e["message"] for e in got]
    d = got[0]["details"]
    assert d["totals"]["ok"] == after - before and d["counts_match"] is True
    assert len(d["client"]["per_worker"]) == 2 and d["client"]["workers"] == 2
    assert d["client"]["self_check"]["measured"] is True
    assert d["outputs_seen"] == ["OUTPUT0", "OUTPUT1"]
    if "request_rate" in options:
        rate = options["request_rate"][0]
        assert 0.6 * rate < d["throughput_rps"] < 1.5 * rate

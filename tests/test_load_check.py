"""The load check against a real Triton server: sweeps, rates, exact counts, errors,
coordinated omission, and a load from three tasks merged. Windows are short (tenths of
a second) so the whole file runs in well under a minute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_triton import probe_task, server_success

from hpctriton.runs.merge import merge_task_dir
from hpctriton.testing import TritonServer
from hpctriton_probe.runner import run_task

pytestmark = pytest.mark.service

DATA = Path(__file__).resolve().parent / "data"
FAST = {"warmup_s": 0.1, "window_s": 0.2, "stability": {"windows": 2, "percent": 50,
                                                         "max_trials": 3}}
PACED_SERVICE_S = 0.02  # demo model "paced": 20 ms per request, one at a time


def load_run(triton: TritonServer, tmp_path: Path, models: list[str], options: dict) -> dict:
    task = probe_task(triton, models=models, checks=[("load", options)])
    return run_task(task, str(tmp_path), run_id="load-test")


def points(results: dict, model: str) -> list[dict]:
    return [e for e in results["checks"] if e["check"] == "load" and e["model"] == model]


def test_concurrency_sweep_1_2_4_finishes_with_figures_and_files(triton: TritonServer,
                                                                tmp_path: Path) -> None:
    results = load_run(triton, tmp_path, ["simple"], {**FAST, "concurrency": [1, 2, 4]})
    setup = [e for e in results["checks"] if e["model"] is None]
    assert setup[0]["status"] == "pass", setup
    rlimit = setup[0]["details"]["rlimit_nofile"]
    assert rlimit["soft"] == rlimit["hard"] or "error" in rlimit
    got = points(results, "simple")
    assert [e["details"]["concurrency"] for e in got] == [1, 2, 4]
    for e in got:
        d = e["details"]
        assert e["status"] == "pass", e["message"]
        assert d["mode"] == "concurrency" and d["throughput_rps"] > 0
        lat = d["latency_ms"]
        assert 0 < lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"]
        assert d["server"]["success"] == d["totals"]["ok"] and d["counts_match"] is True
        assert d["outputs_seen"] == ["OUTPUT0", "OUTPUT1"]
        assert d["client"]["cpu_us_per_request"] > 0
    csv_rows = (tmp_path / "load.csv").read_text().splitlines()
    assert csv_rows[0].split(",")[:2] == ["Concurrency", "Inferences/Second"]
    assert [r.split(",")[0] for r in csv_rows[1:]] == ["1", "2", "4"]
    rank = json.loads((tmp_path / "load" / "rank-0.json").read_text())
    assert len(rank["loads"][0]["points"]) == 3


def test_request_rate_run_finishes_on_schedule(triton: TritonServer, tmp_path: Path) -> None:
    results = load_run(triton, tmp_path, ["simple"], {
        **FAST, "protocol": "http", "request_rate": [100, 200], "schedule": "poisson"})
    got = points(results, "simple")
    assert [e["details"]["request_rate"] for e in got] == [100.0, 200.0]
    for e in got:
        d = e["details"]
        assert e["status"] == "pass", e["message"]
        assert d["counts_match"] is True
        assert 0.5 * d["request_rate"] < d["throughput_rps"] < 1.6 * d["request_rate"]
        assert d["send_lag_ms"]["p50"] < 5  # the client kept to its schedule


@pytest.mark.parametrize("options", [
    {"protocol": "grpc", "concurrency": [1, 3]},
    {"protocol": "grpc", "streaming": True, "concurrency": [2]},
    {"protocol": "grpc", "streaming": True, "request_rate": [150]},
    {"protocol": "http", "concurrency": [3], "batch_size": 2,
     "input_data": str(DATA / "simple_input_data.json")},
], ids=["grpc", "grpc-stream-closed", "grpc-stream-open", "http-batch-file"])
def test_requests_counted_by_the_client_equal_the_servers_successes(
        triton: TritonServer, tmp_path: Path, options: dict) -> None:
    before = server_success(triton, "simple")
    results = load_run(triton, tmp_path, ["simple"], {**FAST, **options})
    after = server_success(triton, "simple")
    got = points(results, "simple")
    assert got and all(e["status"] == "pass" for e in got), [e["message"] for e in got]
    assert sum(e["details"]["totals"]["ok"] for e in got) == after - before
    assert all(e["details"]["counts_match"] for e in got)
    if options.get("batch_size") == 2:
        d = got[0]["details"]
        assert d["throughput_infer_s"] == pytest.approx(2 * d["throughput_rps"])
        assert d["server"]["inference_count"] == 2 * d["server"]["success"]


def test_failing_model_shows_errors_not_a_crash(triton: TritonServer, tmp_path: Path) -> None:
    results = load_run(triton, tmp_path, ["failing", "simple"], {**FAST, "concurrency": [2]})
    assert all(e["status"] != "error" for e in results["checks"]), results["checks"]
    bad = points(results, "failing")[0]
    assert bad["status"] == "fail"
    d = bad["details"]
    assert d["totals"]["ok"] == 0 and d["errors_total"]["server"] == d["totals"]["sent"] > 0
    assert "fails every request on purpose" in d["error_examples"]["server"]
    assert d["server"]["fail"] == d["totals"]["errors"]
    assert points(results, "simple")[0]["status"] == "pass"  # loaded side by side


def test_open_loop_above_capacity_shows_the_queue_closed_loop_hides(
        triton: TritonServer, tmp_path: Path) -> None:
    """Coordinated omission: at twice its capacity the paced model's queue grows all
    through the window; latency from the intended send time shows it, while a closed
    loop (which waits for each answer) sees only the service time."""
    one_window = {"warmup_s": 0.0, "window_s": 0.6,
                  "stability": {"windows": 1, "max_trials": 1}}
    closed = points(load_run(triton, tmp_path / "closed", ["paced"],
                             {**one_window, "concurrency": [1]}), "paced")[0]["details"]
    opened = points(load_run(triton, tmp_path / "open", ["paced"],
                             {**one_window, "request_rate": [100]}), "paced")[0]["details"]
    service_ms = PACED_SERVICE_S * 1000
    # the median, not p99: on a shared 2-core machine a few closed-loop requests can
    # still be delayed by other processes, which says nothing about the server's queue
    assert closed["latency_ms"]["p50"] < 2 * service_ms, closed["latency_ms"]
    assert opened["latency_ms"]["p99"] > 8 * service_ms, opened["latency_ms"]
    assert opened["latency_ms"]["p99"] > 4 * closed["latency_ms"]["p99"]
    assert opened["send_lag_ms"]["p99"] < service_ms  # the client was on time: the queue is
    assert opened["server"]["queue_avg_ms"] > 4 * service_ms  # the server's, and it says so
    assert opened["counts_match"] and closed["counts_match"]


def test_grpc_load_needs_no_grpc_aio(triton: TritonServer, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The gRPC load runs on the probe's own HTTP/2 client: an old grpcio without its
    asyncio API (or none at all) does not stop it."""
    import grpc

    monkeypatch.delattr(grpc, "aio")
    monkeypatch.setitem(sys.modules, "grpc.aio", None)  # the import fails, as on old grpcio
    results = load_run(triton, tmp_path, ["simple"], {**FAST, "protocol": "grpc",
                                                      "concurrency": [2]})
    got = points(results, "simple")
    assert got and all(e["status"] == "pass" for e in got), [e["message"] for e in got]
    assert got[0]["details"]["counts_match"] is True


def test_three_tasks_through_the_probe_cli_merge_to_the_servers_count(
        triton: TritonServer, tmp_path: Path) -> None:
    """What srun does in a job, by hand: three probes with ranks 0-2 and one start time;
    the merged report's answers equal the server's successes over the run."""
    options = {**FAST, "protocol": "http", "concurrency": [1, 2], "tasks": 3}
    task = {"task": 0, "server": {"host": "127.0.0.1", "http_port": triton.http_port,
                                  "grpc_port": triton.grpc_port,
                                  "metrics_port": triton.metrics_port},
            "models": ["simple"], "checks": [{"name": "health"},
                                             {"name": "load", "options": options}],
            "probe": {"timeout_s": 5}}
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"schema_version": 1, "run_id": "three", "tasks": [task]}))
    before = server_success(triton, "simple")
    start = time.time() + 6.0  # start-up takes ~1 s of CPU; a loaded machine stretches it
    repo = str(Path(__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": repo}
    procs = [subprocess.Popen([sys.executable, "-m", "hpctriton_probe.cli", "--spec", str(spec),
                               "--out", str(tmp_path / "results"), "--task", "0",
                               "--load-ranks", "3", "--load-rank", str(r),
                               "--load-start-at", f"{start:.3f}", "--quiet"], env=env)
             for r in range(3)]
    codes = [p.wait(60) for p in procs]
    after = server_success(triton, "simple")
    assert codes == [0, 0, 0], (tmp_path / "results" / "0" / "results.json").read_text()[-3000:]
    task_dir = tmp_path / "results" / "0"
    results = json.loads((task_dir / "results.json").read_text())
    assert [c["check"] for c in results["checks"]][:2] == ["load", "load"]  # load first
    merge_task_dir(task_dir)
    report = json.loads((task_dir / "load-merged.json").read_text())
    assert report["ranks_found"] == [0, 1, 2]
    merged = report["entries"]
    assert sum(e["details"]["totals"]["ok"] for e in merged) == after - before
    assert all(e["details"]["counts_match"] for e in merged), [e["message"] for e in merged]
    assert all(e["details"]["windows"]["run"] == 3 for e in merged)  # no early stop
    own = [e for e in results["checks"] if e["check"] == "load" and e["model"] == "simple"]
    assert all(m["details"]["throughput_rps"] > o["details"]["throughput_rps"]
               for m, o in zip(merged, own, strict=True))

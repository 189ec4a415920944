"""Writes the hand-made run folders ``tests/data/report_*`` the report tests read.

HAND-MADE FIXTURES, NOT PROBE OUTPUT. The ``health``, ``metadata``, ``keepalive``,
``infer``, ``statistics`` and ``metrics`` entries copy the shape of a real collected run;
the ``load`` entries follow the shape documented in ``hpctriton/report/load.py``, which
the load check (issue 6) has not fixed yet. When it lands, change ``load_entry`` here
and ``hpctriton.results.load.point_from_dict`` there, and run this again:

    python tests/data/make_report_fixtures.py

The numbers are made up but plausible (a GPU model under closed-loop load), and
chosen so the tests can state expected differences exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MARK = ("hand-made fixture (tests/data/make_report_fixtures.py): the load entries follow "
        "the shape documented in hpctriton/report/load.py, not real probe output")
PCT = {"p50": 1.0, "p90": 1.3, "p95": 1.45, "p99": 1.9, "max": 3.0}


def entry(check: str, protocol: str | None, model: str | None, status: str,
          duration_s: float, message: str, details: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    return {"check": check, "protocol": protocol, "model": model, "status": status,
            "duration_s": duration_s, "message": message, "details": details or {}}


def load_point(level: float, service_ms: float, instances: int, *, mode: str = "concurrency",
               errors: int = 0, stable: bool = True) -> dict[str, Any]:
    """A closed-loop point: throughput saturates at instances / service time."""
    cap = instances * 1000.0 / service_ms
    if mode == "concurrency":
        throughput = min(level * 1000.0 / service_ms, cap)
        p50 = level * 1000.0 / throughput
    else:  # open loop: beyond capacity the queue grows and latency with it
        throughput = min(level, cap)
        p50 = service_ms * (1 + 4 * max(0.0, level / cap - 0.9))
    return {mode: level, "throughput_rps": round(throughput, 1),
            "requests": int(throughput * 2), "duration_s": 2.0,
            "latency_ms": {k: round(p50 * f, 3) for k, f in PCT.items()},
            "errors": {"timeout": errors, "server": 0}, "stable": stable,
            "server": {"queue_avg_ms": round(max(p50 - service_ms, 0.0), 3),
                       "compute_infer_avg_ms": service_ms,
                       "batching_ratio": 1.0}}


def load_entry(model: str, points: list[dict[str, Any]], mode: str = "concurrency",
               status: str = "pass") -> dict[str, Any]:
    return entry("load", "grpc", model, status, 2.0 * len(points) + 1.0,
                 f"{len(points)} load points", {"mode": mode, "schedule": "constant",
                                                "batch_size": 1, "points": points})


def base_entries(models: list[tuple[str, float, str]]) -> list[dict[str, Any]]:
    """health, metadata, keepalive and infer entries; ``models``: (name, infer latency
    in ms, infer status)."""
    def meta(model: str) -> dict[str, Any]:
        return {"name": model, "versions": ["1"], "platform": "tensorrt_plan",
                "inputs": [{"name": "input_ids", "datatype": "INT32", "shape": [-1, 384]}],
                "outputs": [{"name": "logits", "datatype": "FP16", "shape": [-1, 384, 2]}],
                "config": {"backend": "tensorrt", "max_batch_size": 4,
                           "dynamic_batching": True, "max_queue_delay_us": 100,
                           "instance_groups": [{"kind": "KIND_GPU", "count": 1}],
                           "decoupled": False, "sequence_batching": False}}

    out = []
    for protocol in ("http", "grpc"):
        out.append(entry("health", protocol, None, "pass", 0.0008, "server live and ready",
                         {"live": True, "ready": True}))
        for model, _, _ in models:
            out.append(entry("health", protocol, model, "pass", 0.0004, "model ready",
                             {"ready": True}))
    for protocol in ("http", "grpc"):
        for model, _, _ in models:
            out.append(entry("metadata", protocol, model, "pass", 0.002, "1 input(s), 1 "
                             "output(s), backend tensorrt, max_batch_size 4", meta(model)))
    out.append(entry("keepalive", "grpc", None, "pass", 0.006,
                     "3 calls on one channel, channel healthy",
                     {"calls": 3, "latencies_ms": [1.7, 0.4, 0.4], "healthy": True}))
    for protocol, extra in (("http", 0.6), ("grpc", 0.0)):
        for model, infer_ms, status in models:
            if status == "pass":
                out.append(entry("infer", protocol, model, "pass", (infer_ms + extra) / 1000,
                                 f"1 output(s) ok in {infer_ms + extra:.1f} ms",
                                 {"batch_size": 1, "latency_ms": round(infer_ms + extra, 2)}))
            else:
                out.append(entry("infer", protocol, model, status, 0.004,
                                 f"Failed to process the request(s) for model '{model}'",
                                 {"kind": "server"}))
    return out


def stats_entries(model: str, success: int, queue_ms: float, compute_ms: float
                  ) -> list[dict[str, Any]]:
    delta = {"success": success, "fail": 0, "inference_count": success,
             "execution_count": success, "queue_avg_ms": queue_ms,
             "compute_input_avg_ms": 0.05, "compute_infer_avg_ms": compute_ms,
             "compute_output_avg_ms": 0.04,
             "request_avg_ms": round(queue_ms + compute_ms + 0.09, 4), "batching_ratio": 1.0}
    return [entry("statistics", p, model, "pass", 0.001,
                  f"+{success} ok, +0 failed during the run; avg queue {queue_ms:.2f} ms, "
                  f"compute {compute_ms:.2f} ms", {"delta": delta}) for p in ("http", "grpc")]


def document(run_id: str, task: int, point: dict[str, Any], host: str, started: str,
             ended: str, checks: list[dict[str, Any]], models: list[str]) -> dict[str, Any]:
    counts = {s: sum(1 for c in checks if c["status"] == s)
              for s in ("pass", "fail", "error", "skip")}
    return {"_fixture": MARK, "schema_version": 1,
            "run": {"run_id": run_id, "task": task, "hostname": host,
                    "job_id": f"4242_{task}", "array_job_id": "4242",
                    "array_task_id": str(task), "started_at": started, "ended_at": ended,
                    "interrupted": False,
                    "versions": {"probe": "0.1.0", "python": "3.8.10",
                                 "tritonclient": "2.30.0"},
                    "server": {"host": point.get("server.host", "gpu01"), "http_port": 31443,
                               "grpc_port": 30457, "metrics_port": 8002, "tls": False},
                    "models": models, "checks_planned": sorted({c["check"] for c in checks}),
                    "point": point},
            "checks": checks,
            "summary": {**counts, "total": len(checks),
                        "ok": counts["fail"] == 0 and counts["error"] == 0}}


def write_run(name: str, run_id: str, docs: list[dict[str, Any] | None],
              points: list[dict[str, Any]], states: list[dict[str, Any] | None]) -> None:
    folder = HERE / name
    run = {"_fixture": MARK, "run_id": run_id, "backend": "slurm", "cluster": "asgc-slurm",
           "host": "slurm-ui01.twgrid.org", "remote_dir": f"hpctriton-runs/{run_id}",
           "n_tasks": len(points), "points": points,
           "created_at": "2026-11-20T10:00:00+00:00",
           "submitted_at": "2026-11-20T10:00:02+00:00",
           "jobs": [{"job_id": "4242", "tasks": list(range(len(points))), "offset": 0,
                     "extra": {}}], "events": [], "schema_version": 1}
    folder.mkdir(exist_ok=True)
    (folder / "run.json").write_text(json.dumps(run, indent=1) + "\n")
    for task, (doc, state) in enumerate(zip(docs, states, strict=True)):
        tdir = folder / "results" / str(task)
        tdir.mkdir(parents=True, exist_ok=True)
        if doc is not None:
            (tdir / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
        if state is not None:
            (tdir / "state.json").write_text(json.dumps(state) + "\n")


def state(task: int, exit_code: int, started: str, finished: str) -> dict[str, Any]:
    return {"schema_version": 1, "phase": "finished", "task": task, "job_id": f"4242_{task}",
            "host": f"wn{task:02d}", "started_at": started, "finished_at": finished,
            "exit_code": exit_code, "interrupted": False}


def two_model_run(name: str, run_id: str, high_ms: float, low_ms: float) -> None:
    """Seed 004's setting: a high- and a low-priority copy of one model, under load."""
    levels = [1, 2, 4, 8]
    checks = base_entries([("bert-high", high_ms, "pass"), ("bert-low", low_ms, "pass")])
    checks.append(load_entry("bert-high", [load_point(c, high_ms, 4) for c in levels]))
    checks.append(load_entry("bert-low", [load_point(c, low_ms, 4) for c in levels]))
    checks += stats_entries("bert-high", 2000, 0.1 + high_ms / 4, high_ms)
    checks += stats_entries("bert-low", 2000, 0.1 + low_ms / 4, low_ms)
    start, end = "2026-11-20T10:01:00.000Z", "2026-11-20T10:01:19.500Z"
    doc = document(run_id, 0, {}, "wn01", start, end, checks, ["bert-high", "bert-low"])
    write_run(name, run_id, [doc], [{}], [state(0, 0, "2026-11-20T10:00:59.500Z",
                                                "2026-11-20T10:01:20.000Z")])


def sweep_run() -> None:
    """Three hosts swept; gpu02's model fails inference and is driven open loop past
    its capacity; task 3 died before the probe started (exit 127, no results.json)."""
    run_id = "20261120-110000-sweep-cd34"
    hosts = ["gpu01", "gpu02", "gpu03"]
    points = [{"server.host": h, "models": ["resnet"]} for h in hosts] + [
        {"server.host": "gpu04", "models": ["resnet"]}]
    docs: list[dict[str, Any] | None] = []
    states: list[dict[str, Any] | None] = []
    for task, host in enumerate(hosts):
        service = 4.0 + task
        checks = base_entries([("resnet", service, "fail" if host == "gpu02" else "pass")])
        if host == "gpu02":
            rates = [100, 150, 200, 250, 300]
            pts = [load_point(r, service, 1, mode="request_rate",
                              errors=0 if r < 250 else 7, stable=r < 300) for r in rates]
            checks.append(load_entry("resnet", pts, mode="request_rate"))
        else:
            checks.append(load_entry("resnet", [load_point(c, service, 2)
                                                for c in (1, 2, 4, 8, 16)]))
        checks += stats_entries("resnet", 1000, 0.2, service)
        start = f"2026-11-20T11:00:{10 + 5 * task:02d}.000Z"
        end = f"2026-11-20T11:00:{22 + 5 * task:02d}.250Z"
        docs.append(document(run_id, task, points[task], f"wn{task:02d}", start, end, checks,
                             ["resnet"]))
        states.append(state(task, 1 if host == "gpu02" else 0, start, end))
    docs.append(None)
    states.append(state(3, 127, "2026-11-20T11:00:30.000Z", "2026-11-20T11:00:30.100Z"))
    write_run("report_sweep", run_id, docs, points, states)


def main() -> None:
    two_model_run("report_run_a", "20261120-100000-triton-ab12", high_ms=10.0, low_ms=10.0)
    two_model_run("report_run_b", "20261120-120000-priority-ef56", high_ms=6.0, low_ms=14.0)
    sweep_run()


if __name__ == "__main__":
    main()

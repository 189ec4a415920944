"""Benchmark: the probe's load check against Locust on the same Triton server.

Same server (one ``tritonserver`` from nvidia-pytriton with the demo model ``simple``),
same concurrency (Locust users = the load check's concurrency), same duration, one run
each, one after the other:

* ``locust json``: a ``FastHttpUser`` posting v2 infer requests with JSON tensors, as
  seeds 002/003 do (``locustfile.py`` beside this file);
* ``locust binary``: the same user posting the very bytes the load check sends
  (Triton's binary tensor extension), so the server's work is the same;
* ``hpctriton http`` / ``grpc`` / ``grpc stream``: ``probe.pyz`` running one ``load``
  point (warm-up 0, one window of the whole duration).

Requests are counted by the server (its statistics API, before and after each run),
client CPU by each client process's own rusage: over the whole process (``os.wait4``,
start-up included) and over the load alone (the load check reports it; the locustfile
records it between Locust's test_start and test_stop). p99 is each client's own figure
(Locust's is rounded to two significant digits).

    python benchmarks/load/bench_locust.py [--concurrency 8] [--duration 15]
                                           [--locust-venv DIR] [--json OUT]

Locust runs from a venv of its own (its geventhttpclient pin conflicts with
tritonclient's), created on first use with ``pip install locust``.
Target: at least Locust's throughput at no more than half its client CPU per request.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))


def ensure_locust(venv: Path) -> Path:
    """The ``locust`` executable of ``venv``, made with pip when missing."""
    locust = venv / "bin" / "locust"
    if not locust.exists():
        print(f"creating the Locust venv in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "locust"],
                       check=True)
    return locust


def server_success(http_url: str, model: str = "simple") -> int:
    with urllib.request.urlopen(f"http://{http_url}/v2/models/{model}/stats", timeout=10) as r:
        stats = json.load(r)
    return sum(int(s["inference_stats"]["success"]["count"]) for s in stats["model_stats"])


def run_process(argv: list[str], env: dict[str, str], timeout_s: float) -> tuple[int, float]:
    """Run ``argv``; return its exit code and the CPU seconds of the process itself
    (user + system, from ``wait4``: the child's own rusage)."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 and proc.stderr is not None:
        sys.stderr.write(proc.stderr.read().decode("utf-8", "replace")[-2000:])
    return proc.returncode, usage.ru_utime + usage.ru_stime


def run_locust(locust: Path, http_url: str, concurrency: int, duration: int, body: str,
               work: Path) -> dict[str, Any]:
    marks = work / f"locust-{body}.json"
    prefix = work / f"locust-{body}"
    env = {**os.environ, "HPCT_BODY": body, "HPCT_BENCH_OUT": str(marks)}
    before = server_success(http_url)
    code, cpu_whole = run_process(
        [str(locust), "-f", str(HERE / "locustfile.py"), "--headless", "--only-summary",
         "-u", str(concurrency), "-r", str(concurrency * 100), "-t", f"{duration}s",
         "--host", f"http://{http_url}", "--csv", str(prefix), "--loglevel", "WARNING"],
        env, duration + 60)
    served = server_success(http_url) - before
    in_run = json.loads(marks.read_text())
    p99 = client_count = None
    with open(f"{prefix}_stats.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] == "Aggregated":
                p99 = float(row["99%"])
                client_count = int(row["Request Count"])
    return {"client": f"locust {body}", "protocol": "http", "exit": code, "served": served,
            "client_count": client_count, "seconds": duration, "cpu_whole_s": cpu_whole,
            "cpu_run_s": in_run["cpu_s"], "p99_ms": p99}


def run_probe(pyz: Path, triton: Any, protocol: str, concurrency: int, duration: int,
              work: Path, streaming: bool = False) -> dict[str, Any]:
    name = protocol + (" stream" if streaming else "")
    load = {"protocol": protocol, "streaming": streaming, "concurrency": [concurrency],
            "warmup_s": 0, "window_s": duration,
            "stability": {"windows": 1, "percent": 100, "max_trials": 1}}
    spec = {"schema_version": 1, "run_id": "bench", "tasks": [{
        "task": 0, "models": ["simple"], "checks": [{"name": "load", "options": load}],
        "server": {"host": "127.0.0.1", "http_port": triton.http_port,
                   "grpc_port": triton.grpc_port}, "probe": {"timeout_s": 10}}]}
    folder = work / f"probe-{name.replace(' ', '-')}"
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps(spec))
    before = server_success(triton.http_url)
    code, cpu_whole = run_process(
        [sys.executable, str(pyz), "--spec", str(folder / "spec.json"), "--out",
         str(folder / "results"), "--quiet", "--no-junit"], dict(os.environ), duration + 60)
    served = server_success(triton.http_url) - before
    results = json.loads((folder / "results" / "0" / "results.json").read_text())
    point = next(c for c in results["checks"] if c["model"] == "simple")["details"]
    return {"client": f"hpctriton {name}", "protocol": protocol, "exit": code,
            "served": served, "client_count": point["totals"]["ok"], "seconds": duration,
            "cpu_whole_s": cpu_whole, "cpu_run_s": point["client"]["cpu_s"],
            "p99_ms": point["latency_ms"]["p99"]}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| client | requests (server) | req/s | CPU-s / 1000 req (load) | "
             "CPU-s / 1000 req (whole process) | p99 ms |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append("| {client} | {served} | {rps:.0f} | {run:.3f} | {whole:.3f} | {p99} |"
                     .format(client=r["client"], served=r["served"], rps=r["rps"],
                             run=r["cpu_run_per_1000"], whole=r["cpu_whole_per_1000"],
                             p99=r["p99_ms"]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=int, default=15, help="seconds per client")
    parser.add_argument("--locust-venv", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "hpctriton" / "locust-venv")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    from hpctriton.render.zipapp import probe_zipapp
    from hpctriton.testing import start_triton

    locust = ensure_locust(args.locust_venv)
    with tempfile.TemporaryDirectory(prefix="hpct-bench-load-") as tmp, \
            start_triton(models=["simple"], ready_timeout_s=120) as triton:
        work = Path(tmp)
        pyz = work / "probe.pyz"
        pyz.write_bytes(probe_zipapp())
        c, d = args.concurrency, args.duration
        # warm the server's model once (first requests of a Python-backend model are slow)
        (work / "warm").mkdir()
        run_probe(pyz, triton, "grpc", 2, 2, work / "warm")
        rows = [run_locust(locust, triton.http_url, c, d, "json", work),
                run_locust(locust, triton.http_url, c, d, "binary", work),
                run_probe(pyz, triton, "http", c, d, work),
                run_probe(pyz, triton, "grpc", c, d, work),
                run_probe(pyz, triton, "grpc", c, d, work, streaming=True)]
    for r in rows:
        r["rps"] = r["served"] / r["seconds"]
        r["cpu_run_per_1000"] = r["cpu_run_s"] / r["served"] * 1000
        r["cpu_whole_per_1000"] = r["cpu_whole_s"] / r["served"] * 1000
    print(f"\nconcurrency {args.concurrency}, {args.duration} s per client, "
          f"{os.cpu_count()} cores shared by client and server\n")
    print(table(rows))
    by = {r["client"]: r for r in rows}
    ours = by["hpctriton http"]
    print()
    for peer in ("locust json", "locust binary"):
        theirs = by[peer]
        print("hpctriton http / {}: throughput x{:.2f}, CPU per request x{:.2f} (load), "
              "x{:.2f} (whole process), p99 x{:.2f}".format(
                  peer, ours["rps"] / theirs["rps"],
                  ours["cpu_run_per_1000"] / theirs["cpu_run_per_1000"],
                  ours["cpu_whole_per_1000"] / theirs["cpu_whole_per_1000"],
                  ours["p99_ms"] / theirs["p99_ms"] if theirs["p99_ms"] else float("nan")))
    for r in rows:
        if r["client_count"] is not None and r["client_count"] != r["served"]:
            print(f"note: {r['client']} counted {r['client_count']} answers, the server "
                  f"{r['served']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

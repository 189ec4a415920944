"""Benchmark: the load check's client against perf_analyzer, h2load, wrk and Locust, side
by side in one run, on one Triton server (``tritonserver`` from nvidia-pytriton, demo
model ``simple``: two INT32[16] inputs, Python backend, dynamic batching), at one
concurrency, one client after the other:

* ``hpctriton grpc`` / ``grpc stream`` / ``http``: ``probe.pyz``, one ``load`` point;
* ``perf_analyzer grpc`` / ``grpc stream`` / ``http``: the C++ tool of tritonclient 2.51;
* ``h2load grpc``: nghttp2's load tool posting a pre-built gRPC message (one connection,
  N streams, as ours);
* ``wrk http``: wrk posting the binary tensor extension (N connections);
* ``locust json`` / ``binary``: Locust ``FastHttpUser`` (``locustfile.py``), JSON tensors
  / the probe's bytes.

How it measures, the same way for every client:

* **req/s**: the server's own count (Triton's statistics API) over a fixed steady
  window: read ``--lead`` seconds after the client started (its start-up, connections
  and warm-up are over), and ``--duration`` seconds later.
* **client CPU per request**: the client process's whole CPU (user + system, from
  ``wait4``: start-up included, children included for tools that fork) over every
  request the server counted during the client's life. For the probe also "load only"
  (its own figure over the point).
* **p99**: the client's own figure where it gives one (h2load gives none).

    python benchmarks/load/bench_load.py [--concurrency 8] [--duration 10] [--json OUT]

perf_analyzer comes from ``tritonclient[all]==2.51.0`` (its wheel carries the binary)
in a venv of its own (``~/.cache/hpctriton/pa-venv``, made on first use with
``pip install 'tritonclient[all]==2.51.0' nvidia-cuda-runtime-cu12``; it needs
``libcudart``, found through ``LD_LIBRARY_PATH``), Locust from another
(``~/.cache/hpctriton/locust-venv``: its geventhttpclient pin conflicts with
tritonclient's). h2load and wrk are Debian's ``nghttp2-client`` and ``wrk``.

Goals (issue 15): gRPC CPU per request <= perf_analyzer's at >= its throughput; HTTP
<= 0.5x perf_analyzer's CPU per request; both within 3x of h2load / wrk; streaming the
same against ``perf_analyzer --streaming``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "hpctriton"
PA_VERSION = "2.51.0"


# -------------------------------------------------------------------- the peers


def ensure_venv(venv: Path, exe: str, packages: list[str]) -> Path:
    """``venv/bin/<exe>``, the venv made with pip when missing."""
    path = venv / "bin" / exe
    if not path.exists():
        print(f"creating {venv} ({' '.join(packages)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        *packages], check=True)
    return path


def pa_env(venv: Path) -> dict[str, str]:
    pyver = next((venv / "lib").glob("python3*")).name
    lib = venv / "lib" / pyver / "site-packages" / "nvidia" / "cuda_runtime" / "lib"
    return {**os.environ, "LD_LIBRARY_PATH": f"{lib}:{os.environ.get('LD_LIBRARY_PATH', '')}"}


def server_success(http_url: str, model: str = "simple") -> int:
    with urllib.request.urlopen(f"http://{http_url}/v2/models/{model}/stats", timeout=10) as r:
        stats = json.load(r)
    return sum(int(s["inference_stats"]["success"]["count"]) for s in stats["model_stats"])


def measure(name: str, argv: list[str], http_url: str, *, lead: float, duration: float,
            env: dict[str, str] | None = None, limit_s: float = 120.0,
            cwd: Path | None = None, model: str = "simple") -> dict[str, Any]:
    """Run one client; the server's count over the steady window, the client's CPU
    over its whole life (``wait4``: the process's own rusage, with that of children it
    waited for; the probe's workers, Locust's and perf_analyzer's threads included)."""
    before = server_success(http_url, model)
    out_path = Path(tempfile.mkstemp(prefix="hpct-bench-", suffix=".out")[1])
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(argv, env=env or dict(os.environ), stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd)
        usage_box: dict[str, Any] = {}

        def reap() -> None:
            _, status, usage = os.wait4(proc.pid, 0)
            usage_box.update(status=status, usage=usage)
        reaper = threading.Thread(target=reap, daemon=True)
        reaper.start()
        time.sleep(lead)
        s1 = server_success(http_url, model)
        t1 = time.monotonic()
        time.sleep(duration)
        s2 = server_success(http_url, model)
        t2 = time.monotonic()
        reaper.join(limit_s)
        if reaper.is_alive():
            proc.kill()
            reaper.join(10)
    proc.returncode = os.waitstatus_to_exitcode(usage_box["status"])
    time.sleep(0.3)  # Triton books the last answers just after sending them
    served = server_success(http_url, model) - before
    usage = usage_box["usage"]
    text = out_path.read_text("utf-8", "replace")
    out_path.unlink()
    cpu = usage.ru_utime + usage.ru_stime
    return {"client": name, "exit": proc.returncode, "served": served,
            "rps": (s2 - s1) / (t2 - t1), "cpu_s": cpu,
            "cpu_us_per_request": cpu / served * 1e6 if served else None, "output": text}


def probe_spec(triton: Any, protocol: str, concurrency: int, seconds: float,
               streaming: bool) -> dict[str, Any]:
    load = {"protocol": protocol, "streaming": streaming, "concurrency": [concurrency],
            "warmup_s": 0, "window_s": seconds,
            "stability": {"windows": 1, "percent": 100, "max_trials": 1}}
    return {"schema_version": 1, "run_id": "bench", "tasks": [{
        "task": 0, "models": ["simple"], "checks": [{"name": "load", "options": load}],
        "server": {"host": "127.0.0.1", "http_port": triton.http_port,
                   "grpc_port": triton.grpc_port}, "probe": {"timeout_s": 10}}]}


def run_probe(pyz: Path, triton: Any, work: Path, protocol: str, streaming: bool,
              c: int, lead: float, duration: float) -> dict[str, Any]:
    name = "hpctriton " + protocol + (" stream" if streaming else "")
    folder = work / name.replace(" ", "-")
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps(
        probe_spec(triton, protocol, c, lead + duration + 1, streaming)))
    row = measure(name, [sys.executable, str(pyz), "--spec", str(folder / "spec.json"),
                         "--out", str(folder / "results"), "--quiet", "--no-junit"],
                  triton.http_url, lead=lead, duration=duration)
    results = json.loads((folder / "results" / "0" / "results.json").read_text())
    point = next(e for e in results["checks"] if e["model"] == "simple")["details"]
    row["p99_ms"] = point["latency_ms"]["p99"]
    row["load_cpu_us_per_request"] = point["client"]["cpu_us_per_request"]
    row["client_count"] = point["totals"]["ok"]
    return row


def run_pa(pa: Path, env: dict[str, str], triton: Any, protocol: str, streaming: bool,
           c: int, lead: float, duration: float) -> dict[str, Any]:
    name = "perf_analyzer " + protocol + (" stream" if streaming else "")
    url = triton.grpc_url if protocol == "grpc" else triton.http_url
    # three windows (-s 100: stable at once) cover the lead, the window and a tail
    window_ms = int((lead + duration + 1) * 1000 / 3) + 1
    argv = [str(pa), "-m", "simple", "-i", protocol, "-u", url, "--concurrency-range",
            str(c), "-p", str(window_ms), "-s", "100", "-r", "3"]
    if streaming:
        argv.append("--streaming")
    row = measure(name, argv, triton.http_url, lead=lead, duration=duration, env=env)
    found = re.search(r"p99 latency: (\d+) usec", row["output"])
    row["p99_ms"] = int(found.group(1)) / 1000 if found else None
    return row


def run_h2load(triton: Any, grpc_message: bytes, work: Path, c: int, lead: float,
               duration: float) -> dict[str, Any]:
    body = work / "grpc-request.bin"
    body.write_bytes(b"\x00" + len(grpc_message).to_bytes(4, "big") + grpc_message)
    argv = ["h2load", "-c", "1", "-m", str(c), "-D", str(int(lead + duration + 1)),
            "-d", str(body), "-H", "content-type: application/grpc", "-H", "te: trailers",
            f"http://{triton.grpc_url}/inference.GRPCInferenceService/ModelInfer"]
    row = measure("h2load grpc", argv, triton.http_url, lead=lead, duration=duration)
    row["p99_ms"] = None
    return row


def run_wrk(triton: Any, http_request: bytes, work: Path, c: int, lead: float,
            duration: float) -> dict[str, Any]:
    head, body = http_request.split(b"\r\n\r\n", 1)
    header_length = re.search(rb"Inference-Header-Content-Length: (\d+)", head)
    assert header_length is not None
    (work / "http-body.bin").write_bytes(body)
    script = work / "post.lua"
    script.write_text(
        'local f = io.open("{}", "rb")\nwrk.method = "POST"\nwrk.body = f:read("*all")\n'
        'f:close()\nwrk.headers["Content-Type"] = "application/octet-stream"\n'
        'wrk.headers["Inference-Header-Content-Length"] = "{}"\n'.format(
            work / "http-body.bin", header_length.group(1).decode()))
    argv = ["wrk", "-t1", f"-c{c}", f"-d{int(lead + duration + 1)}s", "--latency", "-s",
            str(script), f"http://{triton.http_url}/v2/models/simple/infer"]
    row = measure("wrk http", argv, triton.http_url, lead=lead, duration=duration)
    found = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", row["output"], re.M)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    row["p99_ms"] = float(found.group(1)) * scale[found.group(2)] if found else None
    return row


def run_locust(locust: Path, triton: Any, work: Path, body: str, c: int, lead: float,
               duration: float) -> dict[str, Any]:
    marks = work / f"locust-{body}.json"
    prefix = work / f"locust-{body}"
    env = {**os.environ, "HPCT_BODY": body, "HPCT_BENCH_OUT": str(marks)}
    argv = [str(locust), "-f", str(HERE / "locustfile.py"), "--headless", "--only-summary",
            "-u", str(c), "-r", str(c * 100), "-t", f"{int(lead + duration + 1)}s",
            "--host", f"http://{triton.http_url}", "--csv", str(prefix), "--loglevel",
            "WARNING"]
    row = measure(f"locust {body}", argv, triton.http_url, lead=lead, duration=duration,
                  env=env)
    row["p99_ms"] = None
    with open(f"{prefix}_stats.csv", newline="") as fh:
        for line in csv.DictReader(fh):
            if line["Name"] == "Aggregated":
                row["p99_ms"] = float(line["99%"])
                row["client_count"] = int(line["Request Count"])
    return row


# ------------------------------------------------------------------- the table


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def summarize(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per client: medians over the rounds, with the ranges."""
    out = []
    for name in [r["client"] for r in rounds[0]]:
        runs = [r for rnd in rounds for r in rnd if r["client"] == name]
        rps = [r["rps"] for r in runs]
        cpu = [r["cpu_us_per_request"] for r in runs if r["cpu_us_per_request"]]
        load = [r["load_cpu_us_per_request"] for r in runs
                if r.get("load_cpu_us_per_request")]
        p99 = [r["p99_ms"] for r in runs if r.get("p99_ms") is not None]
        out.append({"client": name, "rps": median(rps), "rps_range": (min(rps), max(rps)),
                    "served": sum(r["served"] for r in runs),
                    "cpu_us_per_request": median(cpu) if cpu else None,
                    "cpu_range": (min(cpu), max(cpu)) if cpu else None,
                    "load_cpu_us_per_request": median(load) if load else None,
                    "p99_ms": median(p99) if p99 else None, "runs": len(runs)})
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| client | req/s (server), median (range) | requests (server, all rounds) | "
             "client CPU µs / request, whole process: median (range) | load only | "
             "p99 ms |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        load = r.get("load_cpu_us_per_request")
        lo, hi = r["rps_range"]
        cpu = "-" if r["cpu_us_per_request"] is None else "{:.1f} ({:.1f}–{:.1f})".format(
            r["cpu_us_per_request"], *r["cpu_range"])
        lines.append("| {} | {:,.0f} ({:,.0f}–{:,.0f}) | {:,} | {} | {} | {} |".format(
            r["client"], r["rps"], lo, hi, r["served"], cpu,
            "-" if load is None else f"{load:.1f}",
            "-" if r.get("p99_ms") is None else f"{r['p99_ms']:.2f}"))
    return "\n".join(lines)


GOALS = [  # (ours, peer, max CPU ratio, min throughput ratio or None)
    ("hpctriton grpc", "perf_analyzer grpc", 1.0, 1.0),
    ("hpctriton grpc stream", "perf_analyzer grpc stream", 1.0, 1.0),
    ("hpctriton http", "perf_analyzer http", 0.5, None),
    ("hpctriton grpc", "h2load grpc", 3.0, None),
    ("hpctriton grpc stream", "h2load grpc", 3.0, None),
    ("hpctriton http", "wrk http", 3.0, None),
    ("hpctriton http", "locust json", 0.5, 1.0),
    ("hpctriton http", "locust binary", 0.5, 1.0),
]


def _ratio(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float] | None:
    if not a["cpu_us_per_request"] or not b["cpu_us_per_request"] or not b["rps"]:
        return None
    return a["cpu_us_per_request"] / b["cpu_us_per_request"], a["rps"] / b["rps"]


def _met(got: tuple[float, float], cpu_goal: float, rps_goal: float | None) -> bool:
    cpu, rps = got
    return cpu <= cpu_goal and (rps_goal is None or rps >= rps_goal)


def ratios(rows: list[dict[str, Any]], rounds: list[list[dict[str, Any]]]) -> str:
    """The goals on the medians, and in how many rounds each held (a round's clients
    ran one after the other, minutes apart at most)."""
    by = {r["client"]: r for r in rows}
    lines = ["| ours | peer | CPU / request, ours ÷ peer | goal | throughput, ours ÷ peer "
             "| goal | met (medians) | rounds met |", "|---|---|---:|---:|---:|---:|---|---:|"]
    for ours, peer, cpu_goal, rps_goal in GOALS:
        if ours not in by or peer not in by:
            continue
        got = _ratio(by[ours], by[peer])
        if got is None:
            continue
        cpu, rps = got
        held = 0
        for rnd in rounds:
            one = {r["client"]: r for r in rnd}
            each = _ratio(one[ours], one[peer]) if ours in one and peer in one else None
            held += bool(each and _met(each, cpu_goal, rps_goal))
        lines.append("| {} | {} | ×{:.2f} | ≤ ×{:g} | ×{:.2f} | {} | {} | {} of {} |".format(
            ours, peer, cpu, cpu_goal, rps, "-" if rps_goal is None else f"≥ ×{rps_goal:g}",
            "yes" if _met(got, cpu_goal, rps_goal) else "**no**", held, len(rounds)))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of the steady window per client")
    parser.add_argument("--lead", type=float, default=2.0,
                        help="seconds after a client starts before its window")
    parser.add_argument("--pa-venv", type=Path, default=CACHE / "pa-venv")
    parser.add_argument("--locust-venv", type=Path, default=CACHE / "locust-venv")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every client this many times, interleaved; medians")
    parser.add_argument("--skip", action="append", default=[],
                        help="leave out clients whose name contains this (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    import numpy as np

    from hpctriton.render.zipapp import probe_zipapp
    from hpctriton.testing import start_triton
    from hpctriton_probe.load.generator import grpc_request, http_request

    pa = ensure_venv(args.pa_venv, "perf_analyzer",
                     [f"tritonclient[all]=={PA_VERSION}", "nvidia-cuda-runtime-cu12"])
    locust = ensure_venv(args.locust_venv, "locust", ["locust"])
    for tool in ("h2load", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed (apt-get install nghttp2-client wrk)")
    c, lead, dur = args.concurrency, args.lead, args.duration
    arrays = [("INPUT0", "INT32", np.arange(16, dtype=np.int32).reshape(1, 16)),
              ("INPUT1", "INT32", np.ones((1, 16), dtype=np.int32))]
    rounds: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="hpct-bench-load-") as tmp, \
            start_triton(models=["simple"], ready_timeout_s=120) as triton:
        work = Path(tmp)
        pyz = work / "probe.pyz"
        pyz.write_bytes(probe_zipapp())
        env = pa_env(args.pa_venv)
        plan = [
            ("hpctriton grpc", lambda: run_probe(pyz, triton, work, "grpc", False, c, lead, dur)),
            ("perf_analyzer grpc", lambda: run_pa(pa, env, triton, "grpc", False, c, lead, dur)),
            ("h2load grpc", lambda: run_h2load(triton, grpc_request("simple", arrays), work, c,
                                               lead, dur)),
            ("hpctriton grpc stream", lambda: run_probe(pyz, triton, work, "grpc", True, c,
                                                        lead, dur)),
            ("perf_analyzer grpc stream", lambda: run_pa(pa, env, triton, "grpc", True, c,
                                                         lead, dur)),
            ("hpctriton http", lambda: run_probe(pyz, triton, work, "http", False, c, lead, dur)),
            ("perf_analyzer http", lambda: run_pa(pa, env, triton, "http", False, c, lead, dur)),
            ("wrk http", lambda: run_wrk(triton, http_request(triton.http_url, "simple", arrays),
                                         work, c, lead, dur)),
            ("locust json", lambda: run_locust(locust, triton, work, "json", c, lead, dur)),
            ("locust binary", lambda: run_locust(locust, triton, work, "binary", c, lead, dur)),
        ]
        # warm the model once (the first requests of a Python-backend model are slow)
        measure("warm-up", [sys.executable, str(pyz), "--spec",
                            str(_warm_spec(work, triton, c)), "--out", str(work / "warm"),
                            "--quiet", "--no-junit"], triton.http_url, lead=1.0, duration=2.0)
        load_before = os.getloadavg()
        for k in range(args.rounds):
            rounds.append([])
            for name, run in plan:
                if any(s in name for s in args.skip):
                    continue
                print(f"round {k + 1}: {name} ...", flush=True)
                row = run()
                if row["exit"] != 0:
                    print(f"  {name} exited with {row['exit']}:\n{row['output'][-1500:]}")
                rounds[-1].append(row)
            work = work / f"round-{k + 1}"
            work.mkdir()
    load_after = os.getloadavg()
    rows = summarize(rounds)
    header = (f"concurrency {c}; {dur:g} s steady window per client (after {lead:g} s); "
              f"{args.rounds} round(s), clients interleaved; "
              f"{os.cpu_count()} cores shared by the client and the server; load average "
              f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)")
    show(header, rows, rounds, args.json, table, ratios)
    return 0


def show(header: str, rows: list[dict[str, Any]], rounds: list[list[dict[str, Any]]],
         json_out: Path | None, table: Any, ratios: Any) -> None:
    """Print the table, the ratios and any count mismatch (each benchmark has its own
    ``table`` and ``ratios``); write ``json_out`` if given."""
    print("\n" + header + "\n")
    print(table(rows))
    print()
    print(ratios(rows, rounds))
    for rnd in rounds:
        for r in rnd:
            if r.get("client_count") is not None and r["client_count"] != r["served"]:
                print(f"note: {r['client']} counted {r['client_count']} answers, the server "
                      f"{r['served']}")
    if json_out:
        json_out.write_text(json.dumps({"setup": header, "rows": rows, "rounds": [
            [{k: v for k, v in r.items() if k != "output"} for r in rnd] for rnd in rounds]},
            indent=1) + "\n")


def _warm_spec(work: Path, triton: Any, concurrency: int) -> Path:
    path = work / "warm.json"
    path.write_text(json.dumps(probe_spec(triton, "grpc", concurrency, 3.5, False)))
    return path


if __name__ == "__main__":
    sys.exit(main())

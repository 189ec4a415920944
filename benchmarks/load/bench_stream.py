"""Benchmark: the load check's streaming load of a decoupled model against
``perf_analyzer --streaming``, side by side, on the demo ``token_streamer`` (decoupled
Python model: a prefill delay, then one word per response every ``token_s``; here
with ``slots`` set to the concurrency, so requests are served side by side and the
client, not a queue, is what differs): first-response latency and client CPU per
request.

* ``hpctriton stream``: ``probe.pyz``, one ``load`` point, ``protocol: grpc`` (the
  probe's HTTP/2 client: ``ModelStreamInfer`` streams, one per concurrency lane, each
  response read for its request id, final flag and tokens);
* ``perf_analyzer stream``: perf_analyzer of tritonclient 2.51, ``-i grpc --streaming``
  with an input-data file giving the same prompt and ``max_tokens``.

Measured the same way for both (``bench_load.measure``): requests/s by the server's
count over a steady window, client CPU per request over the client's whole life
(``wait4``) and over every request the server counted; "load only" is the probe's own
CPU over its point. Latencies are each client's own: ours are the time to first token
and end to end; perf_analyzer prints one latency, which it calls the first
response's (server#4530 says it measures only that one). Both clients see every
response: perf_analyzer's "Response Throughput" and our output tokens per second.

    python benchmarks/load/bench_stream.py [--concurrency 4] [--duration 10]
        [--tokens 16] [--prefill-s 0.005] [--token-s 0.001] [--rounds 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_load import (  # noqa: E402 - the script's own folder first
    CACHE,
    PA_VERSION,
    REPO,
    ensure_venv,
    measure,
    median,
    pa_env,
    show,
)

sys.path.insert(0, str(REPO))
MODEL = "token_streamer"


def model_repository(into: Path, *, prefill_s: float, token_s: float, slots: int) -> Path:
    """A copy of the demo token_streamer with the benchmark's delays and slots."""
    from hpctriton.testing import DEMO_MODELS

    repo = into / "models"
    shutil.copytree(Path(DEMO_MODELS) / MODEL, repo / MODEL,
                    ignore=shutil.ignore_patterns("__pycache__"))
    config = repo / MODEL / "config.pbtxt"
    text = config.read_text()
    for key, value in (("prefill_s", prefill_s), ("token_s", token_s), ("slots", slots)):
        text, n = re.subn(rf'(key: "{key}" value: {{ string_value: )"[^"]*"',
                          rf'\g<1>"{value:g}"', text)
        assert n == 1, f"config.pbtxt has no parameter {key}"
    config.write_text(text)
    return repo


def run_probe(pyz: Path, triton: Any, work: Path, c: int, tokens: int, lead: float,
              duration: float) -> dict[str, Any]:
    folder = work / "hpctriton-stream"
    folder.mkdir()
    load = {"protocol": "grpc", "concurrency": [c], "warmup_s": 0,
            "window_s": lead + duration + 1, "inputs": {"max_tokens": tokens},
            "stability": {"windows": 1, "percent": 100, "max_trials": 1}}
    (folder / "spec.json").write_text(json.dumps({
        "schema_version": 1, "run_id": "bench", "tasks": [{
            "task": 0, "models": [MODEL], "checks": [{"name": "load", "options": load}],
            "server": {"host": "127.0.0.1", "http_port": triton.http_port,
                       "grpc_port": triton.grpc_port}, "probe": {"timeout_s": 10}}]}))
    row = measure("hpctriton stream", [sys.executable, str(pyz), "--spec",
                                       str(folder / "spec.json"), "--out",
                                       str(folder / "results"), "--quiet", "--no-junit"],
                  triton.http_url, lead=lead, duration=duration, model=MODEL)
    results = json.loads((folder / "results" / "0" / "results.json").read_text())
    d = next(e for e in results["checks"] if e["model"] == MODEL)["details"]
    row.update(first_p50_ms=d["ttft_ms"]["p50"], first_p99_ms=d["ttft_ms"]["p99"],
               e2e_p50_ms=d["e2e_ms"]["p50"], e2e_p99_ms=d["e2e_ms"]["p99"],
               responses_per_s=d["output_tokens_per_s"], client_count=d["totals"]["ok"],
               load_cpu_us_per_request=d["client"]["cpu_us_per_request"],
               tokens_per_request=d["tokens_per_request"]["mean"])
    return row


def run_pa(pa: Path, env: dict[str, str], triton: Any, work: Path, c: int, tokens: int,
           lead: float, duration: float) -> dict[str, Any]:
    data = work / "pa-input.json"
    data.write_text(json.dumps({"data": [{"text_input": ["hpctriton-0"],
                                          "max_tokens": [tokens]}]}))
    window_ms = int((lead + duration + 1) * 1000 / 3) + 1  # three windows, as bench_load
    argv = [str(pa), "-m", MODEL, "-i", "grpc", "--streaming", "-u", triton.grpc_url,
            "--concurrency-range", str(c), "--input-data", str(data), "-p", str(window_ms),
            "-s", "100", "-r", "3"]
    row = measure("perf_analyzer stream", argv, triton.http_url, lead=lead,
                  duration=duration, env=env, model=MODEL)
    out = row["output"]

    def usec(name: str) -> float | None:
        found = re.findall(rf"{name} latency: (\d+) usec", out)
        return int(found[-1]) / 1000 if found else None

    responses = re.findall(r"Response Throughput: ([\d.]+) infer/sec", out)
    row.update(first_p50_ms=usec("p50"), first_p99_ms=usec("p99"), e2e_p50_ms=None,
               e2e_p99_ms=None,
               responses_per_s=float(responses[-1]) if responses else None,
               decoupled_note="using the first response" in out)
    return row


def summarize(rounds: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    out = []
    for name in [r["client"] for r in rounds[0]]:
        runs = [r for rnd in rounds for r in rnd if r["client"] == name]

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float | None:
            values = [r[key] for r in runs if r.get(key) is not None]
            return median(values) if values else None

        cpu = [r["cpu_us_per_request"] for r in runs if r["cpu_us_per_request"]]
        out.append({"client": name, "rps": med("rps"), "served": sum(r["served"] for r in runs),
                    "cpu_us_per_request": med("cpu_us_per_request"),
                    "cpu_range": (min(cpu), max(cpu)) if cpu else None,
                    "load_cpu_us_per_request": med("load_cpu_us_per_request"),
                    "first_p50_ms": med("first_p50_ms"), "first_p99_ms": med("first_p99_ms"),
                    "e2e_p50_ms": med("e2e_p50_ms"), "e2e_p99_ms": med("e2e_p99_ms"),
                    "responses_per_s": med("responses_per_s"), "runs": len(runs)})
    return out


def _f(value: float | None, fmt: str = "{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| client | req/s (server) | responses/s | client CPU µs / request, whole "
             "process: median (range) | load only | first response p50 / p99 ms | "
             "end to end p50 / p99 ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        cpu = "-" if r["cpu_us_per_request"] is None else "{:.0f} ({:.0f}–{:.0f})".format(
            r["cpu_us_per_request"], *r["cpu_range"])
        lines.append("| {} | {} | {} | {} | {} | {} / {} | {} / {} |".format(
            r["client"], _f(r["rps"], "{:,.1f}"), _f(r["responses_per_s"], "{:,.0f}"), cpu,
            _f(r["load_cpu_us_per_request"], "{:.0f}"), _f(r["first_p50_ms"]),
            _f(r["first_p99_ms"]), _f(r["e2e_p50_ms"]), _f(r["e2e_p99_ms"])))
    return "\n".join(lines)


def ratios(rows: list[dict[str, Any]], rounds: list[list[dict[str, Any]]]) -> str:
    by = {r["client"]: r for r in rows}
    ours, peer = by.get("hpctriton stream"), by.get("perf_analyzer stream")
    if not ours or not peer or not ours["cpu_us_per_request"] or not peer["cpu_us_per_request"]:
        return ""
    lines = ["| ours ÷ perf_analyzer | median | per round |", "|---|---:|---|"]

    def each(key: str) -> str:
        got = []
        for rnd in rounds:
            one = {r["client"]: r for r in rnd}
            a, b = one.get("hpctriton stream"), one.get("perf_analyzer stream")
            if a and b and a.get(key) and b.get(key):
                got.append(f"×{a[key] / b[key]:.2f}")
        return ", ".join(got)

    for label, key in (("client CPU per request (whole process)", "cpu_us_per_request"),
                       ("requests/s (server)", "rps"),
                       ("first-response latency p50 (perf_analyzer's own figure)",
                        "first_p50_ms")):
        if ours.get(key) and peer.get(key):
            lines.append(f"| {label} | ×{ours[key] / peer[key]:.2f} | {each(key)} |")
    if ours.get("e2e_p50_ms") and peer.get("first_p50_ms"):
        lines.append("| our end to end p50 ÷ perf_analyzer's latency p50 | ×{:.2f} | {} |"
                     .format(ours["e2e_p50_ms"] / peer["first_p50_ms"], ""))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--lead", type=float, default=2.0)
    parser.add_argument("--tokens", type=int, default=16, help="max_tokens per request")
    parser.add_argument("--prefill-s", type=float, default=0.005)
    parser.add_argument("--token-s", type=float, default=0.001)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--pa-venv", type=Path, default=CACHE / "pa-venv")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from hpctriton.render.zipapp import probe_zipapp
    from hpctriton.testing import start_triton

    pa = ensure_venv(args.pa_venv, "perf_analyzer",
                     [f"tritonclient[all]=={PA_VERSION}", "nvidia-cuda-runtime-cu12"])
    c, lead, dur, n = args.concurrency, args.lead, args.duration, args.tokens
    rounds: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="hpct-bench-stream-") as tmp:
        work = Path(tmp)
        repo = model_repository(work, prefill_s=args.prefill_s, token_s=args.token_s,
                                slots=c)
        with start_triton(str(repo), models=[MODEL], ready_timeout_s=120) as triton:
            pyz = work / "probe.pyz"
            pyz.write_bytes(probe_zipapp())
            env = pa_env(args.pa_venv)
            load_before = os.getloadavg()
            for k in range(args.rounds + 1):  # round 0 warms the model, not counted
                folder = work / f"round-{k}"
                folder.mkdir()
                row_ours = run_probe(pyz, triton, folder, c, n, lead if k else 0.5,
                                     dur if k else 1.0)
                if k == 0:
                    continue
                print(f"round {k}: hpctriton stream, perf_analyzer stream ...", flush=True)
                row_pa = run_pa(pa, env, triton, folder, c, n, lead, dur)
                for row in (row_ours, row_pa):
                    if row["exit"] != 0:
                        print(f"  {row['client']} exited with {row['exit']}:\n"
                              f"{row['output'][-1500:]}")
                rounds.append([row_ours, row_pa])
            load_after = os.getloadavg()
    rows = summarize(rounds)
    header = (f"{MODEL} (prefill {args.prefill_s:g} s, {args.token_s:g} s per token, "
              f"{n} tokens per request, {c} slots); concurrency {c}; {dur:g} s steady "
              f"window per client (after {lead:g} s); {args.rounds} round(s); "
              f"{os.cpu_count()} cores shared by the clients and the server; load average "
              f"{load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)")
    show(header, rows, rounds, args.json, table, ratios)
    return 0


if __name__ == "__main__":
    sys.exit(main())

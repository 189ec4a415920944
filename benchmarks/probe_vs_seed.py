"""Benchmark: the probe's default suite in one process vs the seed's two example clients.

The seed's ``test.sh`` runs two separate tritonclient programs one after the other:
HTTP health + metadata (like Triton's ``simple_http_health_metadata.py``), then a gRPC
keepalive client with one checked inference (like ``simple_grpc_keepalive_client.py``).
The probe does more (both protocols for health, metadata and inference, a keepalive
channel, statistics, metrics) in one process. Both run against the same local server,
alternating, and the ratio of the median wall times is printed. Target: <= 0.8.

It also times ``hpctriton check`` with the same checks, as a user runs it at a
terminal (stdout and stderr on a pseudo-terminal; the host-side imports, the config
validation and the in-process probe), interleaved with the others. Target: no more
than the seed's two programs (ratio <= 1.0; issue 16).

    python benchmarks/probe_vs_seed.py [--runs 10] [--python PYTHON] [--no-cli]

Needs ``nvidia-pytriton`` (for the server) and tritonclient in ``--python``'s
environment. Lazy imports matter here: ``tritonclient.grpc`` and numpy dominate the
start-up of every one of these programs.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pty
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# The seed's two programs, reduced to what they call (same calls, same checks).
SEED_HTTP = r'''
import sys
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

client = httpclient.InferenceServerClient(url=sys.argv[1])
assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("simple")
metadata = client.get_server_metadata()
assert metadata["name"] == "triton"
print(metadata)
metadata = client.get_model_metadata("simple")
assert metadata["name"] == "simple"
print(metadata)
try:
    client.get_model_metadata("wrong_model_name")
except InferenceServerException as ex:
    assert "Request for unknown model" in ex.message()
else:
    sys.exit("FAILED: get_model_metadata wrong_model_name")
'''

SEED_GRPC = r'''
import sys
import numpy as np
import tritonclient.grpc as grpcclient

keepalive = grpcclient.KeepAliveOptions(keepalive_time_ms=2**31 - 1,
                                        keepalive_timeout_ms=20000,
                                        keepalive_permit_without_calls=False,
                                        http2_max_pings_without_data=2)
client = grpcclient.InferenceServerClient(url=sys.argv[1], keepalive_options=keepalive)
inputs = [grpcclient.InferInput("INPUT0", [1, 16], "INT32"),
          grpcclient.InferInput("INPUT1", [1, 16], "INT32")]
input0 = np.arange(16, dtype=np.int32)[None, :]
input1 = np.ones((1, 16), dtype=np.int32)
inputs[0].set_data_from_numpy(input0)
inputs[1].set_data_from_numpy(input1)
outputs = [grpcclient.InferRequestedOutput("OUTPUT0"), grpcclient.InferRequestedOutput("OUTPUT1")]
result = client.infer(model_name="simple", inputs=inputs, outputs=outputs)
for i in range(16):
    print(input0[0][i], "+", input1[0][i], "=", result.as_numpy("OUTPUT0")[0][i])
    assert input0[0][i] + input1[0][i] == result.as_numpy("OUTPUT0")[0][i]
    assert input0[0][i] - input1[0][i] == result.as_numpy("OUTPUT1")[0][i]
print("PASS: KeepAlive")
'''


def build_pyz(path: str) -> str:
    """probe.pyz as the bundle ships it: the package, ``_zipmain.py`` as ``__main__``."""
    probe_dir = os.path.join(REPO, "hpctriton_probe")
    with zipfile.ZipFile(path, "w") as zf:
        for src in sorted(glob.glob(os.path.join(probe_dir, "**", "*.py"), recursive=True)):
            zf.write(src, os.path.relpath(src, REPO))
        zf.write(os.path.join(probe_dir, "_zipmain.py"), "__main__.py")
    return path


def timed(argv: list, cwd: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          env=env, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}):\n{done.stderr}")
    return elapsed


def timed_at_terminal(argv: list, cwd: str) -> float:
    """Wall time of ``argv`` with stdout and stderr on a pseudo-terminal (what a user at a
    terminal sees: ``isatty()`` is true), its output drained as it comes."""
    main_fd, child_fd = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=child_fd, stderr=child_fd,
                            stdin=subprocess.DEVNULL, env=env)
    os.close(child_fd)
    output = bytearray()
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the child side is closed
            break
        if not chunk:
            break
        output += chunk
    code = proc.wait()
    elapsed = time.perf_counter() - start
    os.close(main_fd)
    if code != 0:
        raise SystemExit(f"{argv} failed ({code}):\n{output.decode(errors='replace')}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each (default 10)")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter with tritonclient (default: this one)")
    parser.add_argument("--no-cli", action="store_true",
                        help="do not time `hpctriton check` at a terminal")
    args = parser.parse_args()
    hpctriton = os.path.join(os.path.dirname(sys.executable), "hpctriton")

    from hpctriton.testing import start_triton

    work = tempfile.mkdtemp(prefix="hpctriton-bench-")
    with start_triton(models=["simple"]) as server:
        pyz = build_pyz(os.path.join(work, "probe.pyz"))
        spec = {"schema_version": 1, "run_id": "bench", "tasks": [{
            "task": 0, "models": ["simple"],
            "server": {"host": "127.0.0.1", "http_port": server.http_port,
                       "grpc_port": server.grpc_port, "metrics_port": server.metrics_port},
            "checks": [{"name": n} for n in ("health", "metadata", "keepalive", "infer",
                                             "statistics", "metrics")]}]}
        with open(os.path.join(work, "spec.json"), "w") as fh:
            json.dump(spec, fh)
        for name, text in (("seed_http.py", SEED_HTTP), ("seed_grpc.py", SEED_GRPC)):
            with open(os.path.join(work, name), "w") as fh:
                fh.write(text)

        def probe() -> float:
            return timed([args.python, pyz, "--spec", "spec.json", "--out", "results",
                          "--quiet"], work)

        def seed() -> float:
            return (timed([args.python, "seed_http.py", server.http_url], work)
                    + timed([args.python, "seed_grpc.py", server.grpc_url], work))

        def cli() -> float:
            return timed_at_terminal(
                [hpctriton, "check", "--http-url", f"127.0.0.1:{server.http_port}",
                 "--grpc-url", f"127.0.0.1:{server.grpc_port}", "--metrics-url",
                 f"127.0.0.1:{server.metrics_port}", "--model", "simple"], work)

        probe()  # warm-up: page cache, server-side first-request costs
        seed()
        if not args.no_cli:
            cli()
        probe_times, seed_times, cli_times = [], [], []
        for _ in range(args.runs):
            probe_times.append(probe())
            seed_times.append(seed())
            if not args.no_cli:
                cli_times.append(cli())
        with open(os.path.join(work, "results", "0", "results.json")) as fh:
            results = json.load(fh)
    probe_median = statistics.median(probe_times)
    seed_median = statistics.median(seed_times)
    summary = results["summary"]
    print(f"python: {args.python}")
    print(f"probe (one process, {summary['total']} checks: {summary['pass']} passed): "
          f"median {probe_median:.3f} s  [{' '.join(f'{t:.3f}' for t in probe_times)}]")
    print(f"seed (two programs: HTTP health+metadata, gRPC keepalive+infer): median "
          f"{seed_median:.3f} s  [{' '.join(f'{t:.3f}' for t in seed_times)}]")
    ratio = probe_median / seed_median
    print(f"ratio probe/seed: {ratio:.2f} (target <= 0.80): "
          f"{'met' if ratio <= 0.8 else 'NOT met'}")
    met = ratio <= 0.8
    if cli_times:
        cli_median = statistics.median(cli_times)
        cli_ratio = cli_median / seed_median
        print(f"hpctriton check at a terminal (same checks, flags only): median "
              f"{cli_median:.3f} s  [{' '.join(f'{t:.3f}' for t in cli_times)}]")
        print(f"ratio check/seed: {cli_ratio:.2f} (target <= 1.00): "
              f"{'met' if cli_ratio <= 1.0 else 'NOT met'}")
        met = met and cli_ratio <= 1.0
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())

"""Sweeps of up to 10,000 points: render, submit and collect through the real SSH and
Slurm, and how each grows with the number of points.

For each size (default 200, 2,000 and 10,000 points) the same config is rendered alone
(timed), then submitted through SSH to a real one-node Slurm (render, stage, one remote
script of ``sbatch`` array chunks: timed, three times, the extra runs cancelled at once),
waited for (not timed) and collected back in one verified tar stream (timed, three
times: into the run folder, then into fresh folders). Medians are shown. Per point, each
phase at N points is compared with its time at the smallest size: the goal is within 3x
per point.

What a task reads when it starts is measured on the largest bundle with ``strace``
(``openat``/``read`` of the bundle's files while the probe runs one task): spec.json and
its own line of points.jsonl, and everything of the bundle (the probe's code too).
Reading spec.json in the layout before sweeps were split (every task in full) is
estimated by reading the same tasks in layout 1 with ``load_spec``: time and peak memory.

Each task runs the probe (runtime ``none``: this venv's Python, with tritonclient)
against a real Triton, ``health`` over HTTP only, to keep 10,000 tasks on a 2-core
machine to about half an hour. Slurm's MaxArraySize is its default, 1001; MaxJobCount is
raised from its default (10,000: see ``MAX_JOB_COUNT``).

Needs root (sshd, munge, MariaDB, slurmdbd, slurmctld, slurmd, as the tests start them)
and the nvidia-pytriton wheel. Run: ``.venv/bin/python benchmarks/sweep_scale.py
[--sizes 200,2000,10000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from e2e import make_config  # noqa: E402
from services.common import make_workdir  # noqa: E402
from services.slurm import slurm_conf_path, start_slurm  # noqa: E402
from services.sshd import start_sshd  # noqa: E402

from hpctriton.api import Run, submit  # noqa: E402
from hpctriton.config import Config  # noqa: E402
from hpctriton.render.bundle import render_bundle  # noqa: E402
from hpctriton.testing import start_triton  # noqa: E402
from hpctriton_probe.spec import load_spec  # noqa: E402

MAX_ARRAY_SIZE = 1001  # Slurm's default
#: Slurm's default MaxJobCount is 10,000, and every task of an array counts: a sweep of
#: 10,000 (with the earlier sizes' records not yet purged) would block in sbatch
#: ("Resource temporarily unavailable", retried without end). Sites that run sweeps
#: this large raise it; so does this benchmark.
MAX_JOB_COUNT = 100_000


def _start_slurm(workdir: Path) -> Any:
    import services.slurm as slurm_service

    plain = slurm_service._slurm_conf

    def with_job_count(*args: Any, **kwargs: Any) -> str:
        return plain(*args, **kwargs) + f"MaxJobCount={MAX_JOB_COUNT}\n"

    slurm_service._slurm_conf = with_job_count  # type: ignore[assignment]
    try:
        return start_slurm(workdir=workdir, max_array_size=MAX_ARRAY_SIZE)
    finally:
        slurm_service._slurm_conf = plain  # type: ignore[assignment]


def config_for(folder: Path, triton: Any, sshd: Any, n: int) -> Config:
    return make_config(folder, triton, sshd, checks=[{"health": {"protocols": ["http"]}}],
                       container={"runtime": "none"},
                       cluster={"python": sys.executable},
                       sweep={"probe.timeout_s": [5 + i / 100_000 for i in range(n)]})


def time_render(config: Config, folder: Path) -> tuple[float, Path]:
    t0 = time.perf_counter()
    bundle = render_bundle(config, folder / "bundle", cluster="test")
    return time.perf_counter() - t0, bundle.path


def run_size(n: int, base: Path, triton: Any, sshd: Any, repeat: int) -> dict[str, Any]:
    """Submit ``repeat`` times (the first run is kept, the others cancelled at once) and
    collect the kept run ``repeat`` times (into fresh folders after the first): the
    medians, so that another process on this shared machine skews one sample, not all."""
    folder = base / f"n{n}"
    t0 = time.perf_counter()
    config = config_for(folder, triton, sshd, n)
    load_s = time.perf_counter() - t0
    render_s, bundle = time_render(config, folder)
    sizes = {p.name: p.stat().st_size for p in bundle.iterdir() if p.is_file()}
    submits: list[float] = []
    kept: Run | None = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        run = submit(config, "test")
        submits.append(time.perf_counter() - t0)
        assert isinstance(run, Run)
        if kept is None:
            kept = run
        else:
            with run:
                run.cancel()
    assert kept is not None
    collects: list[float] = []
    with kept:
        t0 = time.perf_counter()
        status = kept.wait(timeout_s=4 * 3600, collect=False)  # collect is timed below
        wait_s = time.perf_counter() - t0
        assert status.done and status.counts() == {"succeeded": n}, status.counts()
        for i in range(repeat):
            t0 = time.perf_counter()
            report = kept.collect(None if i == 0 else folder / f"collect-{i}")
            collects.append(time.perf_counter() - t0)
            assert len(report.fetched) == n, (len(report.fetched), report)
        arrays = len(kept.record.jobs)
    return {"n": n, "load_s": load_s, "render_s": render_s,
            "submit_s": statistics.median(submits), "submits": submits, "wait_s": wait_s,
            "collect_s": statistics.median(collects), "collects": collects,
            "arrays": arrays, "sizes": sizes, "bundle": str(bundle)}


def bytes_read_at_start(bundle: Path, task: int) -> dict[str, int]:
    """Bytes each file of ``bundle`` gave the probe running ``task`` (strace), after a
    first task has filled the probe's bytecode cache, as in a running array."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = [sys.executable, "probe.pyz", "--spec", "spec.json", "--out", "results-strace",
            "--task"]
    subprocess.run([*argv, "0"], cwd=bundle, env=env, capture_output=True, timeout=120)
    trace = bundle.parent / "strace.txt"
    subprocess.run(["strace", "-f", "-e", "trace=openat,read,pread64", "-o", str(trace),
                    *argv, str(task)], cwd=bundle, env=env, capture_output=True, timeout=120)
    fds: dict[tuple[str, str], str] = {}
    got: Counter[str] = Counter()
    for line in trace.read_text(errors="replace").splitlines():
        opened = re.match(r'(\d+)\s+openat\(.*?"([^"]+)".*= (\d+)$', line)
        if opened:
            path = opened.group(2)
            fds[(opened.group(1), opened.group(3))] = os.path.normpath(
                path if path.startswith("/") else str(bundle / path))
            continue
        read = re.match(r"(\d+)\s+p?read(?:64)?\((\d+),.*= (\d+)$", line)
        if read:
            path = fds.get((read.group(1), read.group(2)), "")
            if path.startswith(str(bundle)):
                got[os.path.relpath(path, bundle)] += int(read.group(3))
    shutil.rmtree(bundle / "results-strace", ignore_errors=True)
    return dict(got)


def layout_1_cost(bundle: Path, folder: Path) -> tuple[float, float, int]:
    """The old layout's cost for one task: every task in full in spec.json, parsed whole
    (time, peak MB, file bytes), rebuilt here from the same bundle."""
    spec = load_spec(str(bundle / "spec.json"))
    import dataclasses

    old = {"schema_version": 1, "run_id": spec.run_id,
           "tasks": [dataclasses.asdict(t) for t in spec.tasks]}
    path = folder / "spec-layout1.json"
    path.write_text(json.dumps(old, indent=2))
    tracemalloc.start()
    t0 = time.perf_counter()
    load_spec(str(path)).task(len(spec.tasks) - 1)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return elapsed, peak, path.stat().st_size


def layout_2_cost(bundle: Path) -> tuple[float, float]:
    spec = json.loads((bundle / "spec.json").read_text())
    tracemalloc.start()
    t0 = time.perf_counter()
    load_spec(str(bundle / "spec.json"), task=spec["n_tasks"] - 1)
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200,2000,10000")
    parser.add_argument("--repeat", type=int, default=3,
                        help="submits and collects per size (medians are shown)")
    args = parser.parse_args()
    # a plain `kill` stops the services too (finally below), not only this process
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="hpct-sweep-"))
    os.environ["XDG_STATE_HOME"] = str(tmp / "state")  # its runs stay out of your run index
    workdir = make_workdir("slurm")
    slurm = _start_slurm(workdir)
    sshd = start_sshd(path_prepend=[ROOT / "tests" / "stand-ins", Path(sys.executable).parent],
                      env={"SLURM_CONF": str(slurm_conf_path(workdir))})
    triton = start_triton(models=["simple"])
    rows = []
    try:
        for n in sizes:
            row = run_size(n, tmp, triton, sshd, args.repeat)
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "bundle"}), flush=True)
        largest = rows[-1]
        bundle = Path(largest["bundle"])
        reads = bytes_read_at_start(bundle, largest["n"] - 1)
        old_s, old_mb, old_bytes = layout_1_cost(bundle, tmp)
        new_s, new_mb = layout_2_cost(bundle)
    finally:
        triton.stop()
        sshd.stop()
        slurm.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    base = rows[0]
    print(f"\nSweeps through SSH to Slurm (MaxArraySize {MAX_ARRAY_SIZE}); medians of "
          f"{args.repeat} submits and collects; per point against {base['n']} points")
    print(f"{'points':>7} {'arrays':>6} {'load+render s':>13} {'submit s':>9} "
          f"{'ms/pt':>6} {'x':>5} {'collect s':>9} {'ms/pt':>6} {'x':>5} {'wait s':>7}  "
          "spec.json / points.jsonl bytes")
    for r in rows:
        sub_pp = r["submit_s"] / r["n"] * 1000
        col_pp = r["collect_s"] / r["n"] * 1000
        print(f"{r['n']:>7} {r['arrays']:>6} {r['load_s'] + r['render_s']:>13.2f} "
              f"{r['submit_s']:>9.2f} {sub_pp:>6.2f} "
              f"{sub_pp / (base['submit_s'] / base['n'] * 1000):>5.2f} "
              f"{r['collect_s']:>9.2f} {col_pp:>6.2f} "
              f"{col_pp / (base['collect_s'] / base['n'] * 1000):>5.2f} {r['wait_s']:>7.0f}  "
              f"{r['sizes'].get('spec.json')} / {r['sizes'].get('points.jsonl')}")
    spec_bytes = sum(v for k, v in reads.items() if k in ("spec.json", "points.jsonl"))
    print(f"\nTask {largest['n'] - 1} of {largest['n']} at start read {spec_bytes} bytes of "
          f"spec.json and points.jsonl, {sum(reads.values())} bytes of the bundle in all:")
    for name, count in sorted(reads.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {count:>8}  {name}")
    print(f"Parsing the spec for that task: layout 2 {new_s * 1000:.1f} ms, peak "
          f"{new_mb:.2f} MB; layout 1 (every task in full, {old_bytes / 1e6:.1f} MB) "
          f"{old_s * 1000:.0f} ms, peak {old_mb:.0f} MB")


if __name__ == "__main__":
    main()

"""Benchmark: the size of ``probe.pyz`` and its start-up time on every interpreter of
the portability matrix (``hpctriton/compat.py``; venvs from ``scripts/portability-venvs``).

Start-up matters because every array task of a job starts the probe afresh, often on
a shared filesystem. Measured per interpreter, median (and min/max) of ``--runs``:

* ``--version``: the zip opens, ``__main__`` checks the Python version and argparse
  answers: the floor of every run;
* ``spec``: ``--spec spec.json --task 99``: reads and validates a default-suite spec,
  then exits 2 because task 99 is not in it (a dry start: no tritonclient import, no
  network);
* each of them with the bytecode cache (``.probe-cache/`` beside the zip, filled by the
  first run) and without (``HPCTRITON_PROBE_CACHE=off``: compiled from the zip each time);
* ``import tc``: ``import tritonclient.http, tritonclient.grpc, numpy`` alone, for
  comparison: the cost every check run adds on top, whatever the probe does.

    python benchmarks/probe_size_startup.py [--runs 15] [--venvs .venv-compat] [--json]

Runs are interleaved across interpreters so a busy moment of the machine hits all alike.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from hpctriton.render.zipapp import probe_zipapp  # noqa: E402
from hpctriton.tools.compat import MATRIX  # noqa: E402 - after the sys.path line above
from hpctriton_probe.spec import DEFAULT_CHECKS  # noqa: E402


def _spec(folder: str) -> str:
    spec = {"schema_version": 1, "run_id": "bench", "tasks": [{
        "task": 0,
        "server": {"host": "127.0.0.1", "http_port": 8000, "grpc_port": 8001,
                   "metrics_port": 8002},
        "models": ["simple", "identity_all_types"],
        "checks": [{"name": c} for c in DEFAULT_CHECKS],
    }]}
    path = os.path.join(folder, "spec.json")
    with open(path, "w") as fh:
        json.dump(spec, fh)
    return path


def _interpreters(venvs: str) -> list[tuple[str, str]]:
    found = [("this (" + ".".join(map(str, sys.version_info[:2])) + ")", sys.executable)]
    for entry in MATRIX:
        python = os.path.join(venvs, entry.name, "bin", "python")
        if os.path.exists(python):
            found.append((entry.name, python))
        else:
            print(f"# {entry.name}: no venv at {os.path.dirname(os.path.dirname(python))} "
                  "(scripts/portability-venvs builds it)", file=sys.stderr)
    return found


def _time(argv: list[str], env: dict[str, str], cwd: str, expect: int) -> float:
    t0 = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, timeout=120)
    elapsed = time.perf_counter() - t0
    if done.returncode != expect:
        raise SystemExit(f"{argv} exited {done.returncode}, expected {expect}: "
                         f"{done.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--venvs", default=os.environ.get("HPCTRITON_COMPAT_VENVS")
                    or os.path.join(REPO, ".venv-compat"))
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    args = ap.parse_args()

    data = probe_zipapp()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
    size = {"bytes": len(data), "files": len(infos),
            "uncompressed_bytes": sum(i.file_size for i in infos)}
    folder = tempfile.mkdtemp(prefix="hpctriton-bench-")
    try:
        pyz = os.path.join(folder, "probe.pyz")
        with open(pyz, "wb") as fh:
            fh.write(data)
        spec = _spec(folder)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        off = {**env, "HPCTRITON_PROBE_CACHE": "off"}
        cases = {
            "--version cached": (["--version"], env, 0),
            "--version no cache": (["--version"], off, 0),
            "spec cached": (["--spec", spec, "--out", folder, "--task", "99"], env, 2),
            "spec no cache": (["--spec", spec, "--out", folder, "--task", "99"], off, 2),
        }
        interpreters = _interpreters(args.venvs)
        timings: dict[str, dict[str, list[float]]] = {n: {} for n, _ in interpreters}
        for _name, python in interpreters:  # fill each cache once, outside the timing
            _time([python, pyz, "--version"], env, folder, 0)
        for _ in range(args.runs):
            for name, python in interpreters:
                for case, (extra, case_env, expect) in cases.items():
                    timings[name].setdefault(case, []).append(
                        _time([python, pyz, *extra], case_env, folder, expect))
                timings[name].setdefault("import tc", []).append(_time(
                    [python, "-c", "import tritonclient.http, tritonclient.grpc, numpy"],
                    env, folder, 0))
        versions = {name: subprocess.run(
            [python, "-c", "import sys, platform; from importlib.metadata import version; "
             "print(platform.python_version(), version('tritonclient'))"],
            capture_output=True, text=True, env=env).stdout.split()
            for name, python in interpreters}
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    summary = {name: {case: {"median_ms": round(statistics.median(v) * 1000, 1),
                             "min_ms": round(min(v) * 1000, 1),
                             "max_ms": round(max(v) * 1000, 1)}
                      for case, v in cases_t.items()}
               for name, cases_t in timings.items()}
    if args.json:
        print(json.dumps({"zipapp": size, "runs": args.runs, "versions": versions,
                          "startup": summary}, indent=1))
        return 0
    print(f"probe.pyz: {size['bytes'] / 1024:.1f} KiB ({size['bytes']} bytes), "
          f"{size['files']} files, {size['uncompressed_bytes'] / 1024:.1f} KiB uncompressed")
    print(f"start-up, median of {args.runs} runs in ms (min-max):")
    columns = [*cases, "import tc"]
    print(f"{'interpreter':<36}" + "".join(f"{c:>22}" for c in columns))
    for name in summary:
        py, tc = (versions.get(name) or ["?", "?"])[:2]
        label = f"{name} (py{py}, tc{tc})"
        cells = []
        for c in columns:
            s = summary[name][c]
            cells.append(f"{s['median_ms']:.0f} ({s['min_ms']:.0f}-{s['max_ms']:.0f})")
        print(f"{label:<36}" + "".join(f"{c:>22}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())

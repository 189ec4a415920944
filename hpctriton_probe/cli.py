"""The probe's command line: ``python probe.pyz --spec spec.json --out results/``.

Writes ``<out>/<task>/results.json`` (after every check), ``junit.xml`` and
``probe.log``, and prints one line per check. Exit codes: 0 every check passed (skips
allowed), 1 a check failed or errored, 2 bad spec or arguments (or tritonclient
missing), 143 interrupted by SIGTERM, 70 a crash of the probe itself.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, List, Mapping, Optional, Tuple

from hpctriton_probe import __version__

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultsDocument
    from hpctriton_probe.spec import Spec, TaskSpec

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CRASH = 0, 1, 2, 70

log = logging.getLogger("hpctriton_probe")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="probe.pyz",
        description="Check a Triton Inference Server as spec.json says; write "
                    "<out>/<task>/results.json, junit.xml and probe.log.")
    p.add_argument("--spec", required=True, metavar="FILE", help="spec.json of the bundle")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="results folder; this task writes into DIR/<task>/")
    p.add_argument("--task", type=int, default=None, metavar="N",
                   help="task index (default: $SLURM_ARRAY_TASK_ID, else 0)")
    p.add_argument("--junit-only", action="store_true",
                   help="run nothing: rewrite junit.xml from an existing results.json")
    p.add_argument("--no-junit", action="store_true", help="do not write junit.xml")
    p.add_argument("--quiet", action="store_true", help="no per-check lines on stdout")
    p.add_argument("--load-ranks", type=int, default=1, metavar="N",
                   help="the job started N copies of the probe (srun --ntasks N) for load "
                        "checks with tasks > 1 (default 1)")
    p.add_argument("--load-rank", type=int, default=None, metavar="R",
                   help="this copy's rank, 0..N-1 (default: $SLURM_PROCID); rank 0 runs "
                        "every check, the others only the load")
    p.add_argument("--load-start-at", type=float, default=None, metavar="EPOCH",
                   help="when the load from several tasks starts (seconds since the epoch; "
                        "every rank gets the same value)")
    p.add_argument("--version", action="version", version="hpctriton probe " + __version__)
    return p


def format_line(entry: Mapping[str, Any]) -> str:
    """``PASS  infer      grpc  simple            0.004s  2 output(s) ok ...``."""
    return "{:<5} {:<10} {:<5} {:<24} {:>7.3f}s  {}".format(
        entry["status"].upper(), entry["check"], entry["protocol"] or "-",
        entry["model"] or "-", float(entry.get("duration_s") or 0), entry["message"])


def _setup_log(path: str) -> logging.Handler:
    handler = logging.FileHandler(path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    return handler


def _write_junit(task_dir: str, results: ResultsDocument) -> None:
    from hpctriton_probe.junit import results_to_junit
    from hpctriton_probe.results import atomic_write

    atomic_write(os.path.join(task_dir, "junit.xml"), results_to_junit(results))


def _default_task() -> int:
    value = os.environ.get("SLURM_ARRAY_TASK_ID", "")
    return int(value) if value.isdigit() else 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``probe.pyz``; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help is 0, a usage error is 2
        return int(exc.code or 0)
    from hpctriton_probe.results import EXIT_INTERRUPTED, exit_code, write_stdout_line
    from hpctriton_probe.spec import SpecError, load_spec

    task_index = args.task if args.task is not None else _default_task()
    task_dir = os.path.join(args.out, str(task_index))
    if args.junit_only:
        try:
            with open(os.path.join(task_dir, "results.json"), encoding="utf-8") as fh:
                results = json.load(fh)
            _write_junit(task_dir, results)
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"probe: cannot write junit.xml: {exc}\n")
            return EXIT_USAGE
        return exit_code(results)
    try:
        spec = load_spec(args.spec, task=task_index)
        task = spec.task(task_index)
    except SpecError as exc:
        sys.stderr.write(f"probe: {exc}\n")
        return EXIT_USAGE
    if argv is None:  # the program itself, not a call from Python: it may run again
        _rerun_for_protobuf(task)
    try:
        os.makedirs(task_dir, exist_ok=True)
    except OSError as exc:
        sys.stderr.write(f"probe: cannot create {task_dir}: {exc}\n")
        return EXIT_USAGE
    ranks = max(1, args.load_ranks)
    rank = args.load_rank
    if rank is None:
        procid = os.environ.get("SLURM_PROCID", "") if ranks > 1 else ""
        rank = int(procid) if procid.isdigit() else 0
    if not 0 <= rank < ranks:
        sys.stderr.write(f"probe: --load-rank {rank} is not between 0 and {ranks - 1}\n")
        return EXIT_USAGE
    if rank > 0:
        return _load_rank_main(args, spec, task, task_dir, rank, ranks)
    started = time.monotonic()
    base_dir = os.path.dirname(os.path.abspath(args.spec))
    on_result = None if args.quiet else (lambda e: write_stdout_line(format_line(e)))

    def body() -> ResultsDocument:
        from hpctriton_probe.runner import run_task

        log.info("hpctriton probe %s on Python %s (%s); spec %s, task %d, run %s",
                 __version__, sys.version.split()[0], sys.executable,
                 os.path.abspath(args.spec), task_index, spec.run_id)
        return run_task(task, task_dir, run_id=spec.run_id, base_dir=base_dir,
                        on_result=on_result, handle_sigterm=True, load_ranks=ranks,
                        load_start_at=args.load_start_at)

    results, failed = _guarded("probe", os.path.join(task_dir, "probe.log"), body)
    if failed is not None:
        return failed
    if not args.no_junit:
        try:
            _write_junit(task_dir, results)
        except OSError as exc:
            sys.stderr.write(f"probe: cannot write junit.xml: {exc}\n")
    summary = results["summary"]
    code = exit_code(results)
    if not args.quiet:
        write_stdout_line("{}: {} passed, {} failed, {} errors, {} skipped in {:.2f} s -> {}"
                          .format("interrupted" if code == EXIT_INTERRUPTED else
                                  "ok" if code == 0 else "FAILED",
                                  summary["pass"], summary["fail"], summary["error"],
                                  summary["skip"], time.monotonic() - started,
                                  os.path.join(task_dir, "results.json")))
    return code


def _uses_grpc(task: TaskSpec) -> bool:
    from hpctriton_probe.checks import by_name

    return task.server.grpc_port is not None and any(
        "grpc" in by_name(c.name).endpoints(c.options) for c in task.checks)


def _rerun_for_protobuf(task: TaskSpec) -> None:
    """Start this probe again, in this process (``exec``: the job's wait on its pid
    holds), with the pure-Python protobuf when the installed tritonclient's generated
    gRPC code cannot load under the installed protobuf (``features.protobuf_problem``).
    Nothing has been written yet; the second run says why in probe.log and in
    ``run.workarounds``. Only once: the second run has ``PROTOBUF_RERUN`` set, and
    repairs the old code's map fields (``features.repair_map_fields``)."""
    from hpctriton_probe.net import features

    if os.environ.get(features.PROTOBUF_RERUN):
        features.repair_map_fields()  # this is the second run: before tritonclient.grpc
        return
    if not _uses_grpc(task):
        return
    problem = features.protobuf_problem()
    if problem is None:
        return
    env = dict(os.environ)
    env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    env[features.PROTOBUF_RERUN] = problem
    if os.path.basename(sys.argv[0]) == "cli.py":  # python -m hpctriton_probe.cli
        command = [sys.executable, "-m", "hpctriton_probe.cli", *sys.argv[1:]]
    else:  # python probe.pyz
        command = [sys.executable, *sys.argv]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, command, env)


def _load_rank_main(args: argparse.Namespace, spec: Spec, task: TaskSpec, task_dir: str,
                    rank: int, ranks: int) -> int:
    """A rank > 0 of a load from several tasks: only the load, its own log and rank
    file under ``<task_dir>/load/``; nothing on stdout (rank 0 reports)."""
    load_dir = os.path.join(task_dir, "load")
    try:
        os.makedirs(load_dir, exist_ok=True)
    except OSError as exc:
        sys.stderr.write(f"probe: cannot create {load_dir}: {exc}\n")
        return EXIT_USAGE

    def body() -> int:
        from hpctriton_probe.runner import run_load_rank

        log.info("hpctriton probe %s, load rank %d of %d on Python %s", __version__, rank,
                 ranks, sys.version.split()[0])
        return run_load_rank(task, task_dir, rank=rank, ranks=ranks,
                             start_at=args.load_start_at, run_id=spec.run_id,
                             base_dir=os.path.dirname(os.path.abspath(args.spec)),
                             handle_sigterm=True)

    code, failed = _guarded(f"probe (load rank {rank})",
                            os.path.join(load_dir, f"rank-{rank}.log"), body)
    return failed if failed is not None else code


def _guarded(label: str, log_path: str, body: Callable[[], Any]) -> Tuple[Any, Optional[int]]:
    """Run ``body`` with its log file open: ``(result, None)``, or ``(None, exit code)``
    with a one-line message (the traceback goes to the log) when it fails."""
    from hpctriton_probe.net.clients import ProbeDependencyError
    from hpctriton_probe.spec import SpecError

    handler = _setup_log(log_path)
    try:
        return body(), None
    except (ProbeDependencyError, SpecError) as exc:
        log.error("%s", exc)
        sys.stderr.write(f"{label}: {exc}\n")
        return None, EXIT_USAGE
    except KeyboardInterrupt:
        return None, 130
    except Exception:  # noqa: BLE001 - a crash: say so plainly, keep the trace in the log
        from hpctriton_probe.redact import redact

        log.error("probe crashed:\n%s", traceback.format_exc())
        sys.stderr.write(f"{label} crashed; see {log_path}\n"
                         + redact(traceback.format_exc()))
        return None, EXIT_CRASH
    finally:
        log.removeHandler(handler)
        handler.close()


if __name__ == "__main__":  # pragma: no cover - python -m hpctriton_probe.cli
    sys.exit(main())

"""Run one task's checks and build its results document.

Used by the probe's CLI inside a job and, in-process, by ``hpctriton check``::

    from hpctriton_probe.runner import run_task
    from hpctriton_probe.spec import load_spec

    spec = load_spec("bundle/spec.json")
    results = run_task(spec.task(0), "results/0", run_id=spec.run_id, base_dir="bundle")

The statistics check is special: its "before" snapshot is taken ahead of every other
check and its entries are recorded after all of them, so the difference covers the run.

The load check can run from several tasks of one Slurm job (``tasks: N``, started
together by ``srun``): ``run_task`` runs on rank 0 with ``load_ranks=N`` and runs those
load checks first, on the wall-clock schedule every rank computes from
``load_start_at``; :func:`run_load_rank` runs on the other ranks and does only those
load checks, writing ``load/rank-<r>.json`` and no ``results.json``.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Callable, Optional

from hpctriton_probe import checks as checks_pkg
from hpctriton_probe.checks import CheckContext
from hpctriton_probe.checks import statistics as statistics_check
from hpctriton_probe.net.calls import Caller
from hpctriton_probe.net.clients import Clients, expand_headers, require_tritonclient
from hpctriton_probe.results import Interrupted, ResultsWriter, SigtermGuard, new_results, utc_now
from hpctriton_probe.spec import CheckSpec, TaskSpec

log = logging.getLogger("hpctriton_probe")

#: Within one check, results.json is rewritten at least this often (and after it).
SAVE_EVERY_S = 1.0


def _run_info(task: TaskSpec) -> dict:
    s = task.server
    return {
        "server": {"host": s.host, "http_port": s.http_port, "grpc_port": s.grpc_port,
                   "metrics_port": s.metrics_port, "tls": s.tls is not None},
        "models": list(task.models),
        "checks_planned": [c.name for c in task.checks],
        "point": dict(task.point),
    }


def run_task(
    task: TaskSpec,
    out_dir: Optional[str] = None,
    *,
    run_id: str = "",
    base_dir: str = ".",
    on_result: Optional[Callable[[dict], None]] = None,
    environ: Optional[dict] = None,
    handle_sigterm: bool = False,
    load_ranks: int = 1,
    load_start_at: Optional[float] = None,
) -> dict:
    """Run ``task``'s checks; return the results document (README's ``results.json``).

    ``out_dir`` (optional): write ``out_dir/results.json`` at the start, after every
    check (within a long check, every second) and at the end. ``base_dir``: where
    relative file paths of the spec (input data, expected outputs, TLS files) are found.
    ``on_result`` is called with each entry as it is recorded. ``handle_sigterm`` (the
    CLI sets it; main thread only) turns SIGTERM into a clean stop: ``run.interrupted``
    is true in the returned and written results. ``load_ranks`` (> 1 under ``srun``):
    how many tasks the job started for load checks with ``tasks`` > 1; this is rank 0.

    Raises ``ProbeDependencyError`` when tritonclient or numpy is missing and
    ``SpecError`` when a header names an unset environment variable.
    """
    require_tritonclient()
    headers = expand_headers(task.server.headers, environ)
    results = new_results(run_id, task.task, environ=environ, extra_run=_run_info(task))
    writer = ResultsWriter(out_dir) if out_dir else None
    guard = SigtermGuard(busy=lambda: bool(writer and writer.writing))
    clients = Clients(task.server, base_dir=base_dir, headers=headers)
    caller = Caller(task.probe.retries, task.probe.retry_backoff_s)
    shared = _load_shared(task, out_dir, run_id, 0, load_ranks, load_start_at)
    started = time.monotonic()
    current: dict[str, Optional[str]] = {"check": None}
    last_save = {"at": 0.0}

    def save(final: bool = False) -> None:
        results["run"]["duration_s"] = round(time.monotonic() - started, 3)
        last_save["at"] = time.monotonic()
        if writer is not None:
            writer.write(results, durable=final)
            if not final:
                guard.check_pending()

    def record(entry: dict) -> None:
        results["checks"].append(entry)
        log.info("%s %s %s %s: %s", entry["status"].upper(), entry["check"],
                 entry["protocol"] or "-", entry["model"] or "-", entry["message"])
        # Written after every check (below), and within a long check at least every
        # SAVE_EVERY_S seconds; SIGTERM writes whatever was recorded.
        if time.monotonic() - last_save["at"] >= SAVE_EVERY_S:
            save()
        if on_result is not None:
            on_result(entry)

    def context(spec: CheckSpec) -> CheckContext:
        return CheckContext(spec.name, spec.options, task, clients, caller,
                            base_dir=base_dir, shared=shared)

    def run_check(spec: CheckSpec, fn: Callable[[CheckContext], Any]) -> None:
        current["check"] = spec.name
        ctx = context(spec)
        t0 = time.monotonic()
        try:
            for entry in fn(ctx):
                record(entry)
        except Exception as exc:  # noqa: BLE001 - a probe bug must not lose other checks
            log.error("check %s crashed:\n%s", spec.name, traceback.format_exc())
            record(ctx.entry(None, None, "error", "the probe failed in this check: "
                             f"{type(exc).__name__}: {exc}", {}, t0))
        current["check"] = None
        save()

    if handle_sigterm:
        guard.install()
    try:
        save()
        stats = [c for c in task.checks if c.name == "statistics"]
        others = [c for c in task.checks if c.name != "statistics"]
        # several tasks make the load together from a common start: theirs goes first
        together = [c for c in others if _multi_task_load(c, load_ranks)]
        others = together + [c for c in others if c not in together]
        for spec in stats:
            current["check"] = "statistics"
            try:
                shared[statistics_check.SNAPSHOT_KEY] = statistics_check.snapshot(context(spec))
            except Exception:  # noqa: BLE001 - the "after" entries will say what is wrong
                log.error("statistics snapshot failed:\n%s", traceback.format_exc())
        for spec in others:
            run_check(spec, checks_pkg.module(spec.name).run)
        for spec in stats:
            run_check(spec, statistics_check.run)
        current["check"] = None
    except (Interrupted, KeyboardInterrupt) as exc:
        signame = "SIGTERM" if isinstance(exc, Interrupted) else "SIGINT"
        results["run"]["interrupted"] = True
        results["run"]["interrupted_by"] = signame
        if current["check"]:
            entry: dict[str, Any] = {
                "check": current["check"], "protocol": None, "model": None,
                "status": "error", "duration_s": 0.0,
                "message": f"interrupted by {signame} before this check finished",
                "details": {}}
            results["checks"].append(entry)
            if on_result is not None:
                on_result(entry)
        log.warning("interrupted by %s during %s", signame, current["check"] or "start-up")
        if isinstance(exc, KeyboardInterrupt):
            _finish(results, save, clients, guard)
            raise
    _finish(results, save, clients, guard)
    return results


def _finish(results: dict, save: Callable[..., None], clients: Clients,
            guard: SigtermGuard) -> None:
    # Keep the guard installed but spent: a further SIGTERM (batch systems send more
    # than one) is ignored until the final results are on disk, instead of killing the
    # probe with the default action half-way through.
    guard.fired = True
    guard.pending = None
    results["run"]["ended_at"] = utc_now()
    try:
        clients.close()
    except Exception:  # noqa: BLE001 - closing must never lose results
        log.debug("closing clients failed", exc_info=True)
    save(final=True)
    guard.uninstall()


# ------------------------------------------------------------------ load from many tasks


def _multi_task_load(spec: CheckSpec, launched: int) -> bool:
    return spec.name == "load" and min(int(spec.options.tasks), launched) > 1


def _load_shared(task: TaskSpec, out_dir: Optional[str], run_id: str, rank: int,
                 launched: int, start_at: Optional[float]) -> dict:
    """What the load check needs from the runner, in the checks' shared dict."""
    if not any(c.name == "load" for c in task.checks):
        return {}
    load_check = checks_pkg.module("load")
    return {load_check.RANKS_KEY: {"rank": rank, "launched": max(1, launched),
                                   "start_at": start_at},
            load_check.OUT_DIR_KEY: out_dir, "load.run_id": run_id}


def run_load_rank(
    task: TaskSpec,
    out_dir: str,
    *,
    rank: int,
    ranks: int,
    start_at: Optional[float],
    run_id: str = "",
    base_dir: str = ".",
    environ: Optional[dict] = None,
    handle_sigterm: bool = False,
) -> int:
    """Rank ``rank`` (>= 1) of a load from several tasks: run only the load checks with
    ``tasks`` > ``rank``, on the common schedule; their windows go to
    ``out_dir/load/rank-<rank>.json`` (rank 0 writes results.json). Returns 0 when the
    load ran (its figures, errors included, are in the rank file) or there was nothing
    to do; 143 when interrupted.
    """
    require_tritonclient()
    headers = expand_headers(task.server.headers, environ)
    clients = Clients(task.server, base_dir=base_dir, headers=headers)
    caller = Caller(task.probe.retries, task.probe.retry_backoff_s)
    shared = _load_shared(task, out_dir, run_id, rank, ranks, start_at)
    guard = SigtermGuard()
    mine = [c for c in task.checks if _multi_task_load(c, ranks) and c.options.tasks > rank]
    if handle_sigterm:
        guard.install()
    try:
        load_check = checks_pkg.module("load")
        for spec in mine:
            ctx = CheckContext(spec.name, spec.options, task, clients, caller,
                               base_dir=base_dir, shared=shared)
            try:
                for entry in load_check.run(ctx):
                    log.info("%s %s %s %s: %s", entry["status"].upper(), entry["check"],
                             entry["protocol"] or "-", entry["model"] or "-", entry["message"])
            except (Interrupted, KeyboardInterrupt):
                raise
            except Exception:  # noqa: BLE001 - one load check must not stop the next
                log.error("load check crashed on rank %d:\n%s", rank, traceback.format_exc())
    except (Interrupted, KeyboardInterrupt):
        log.warning("rank %d interrupted", rank)
        return 143
    finally:
        guard.fired = True
        try:
            clients.close()
        except Exception:  # noqa: BLE001 - closing must never hide the outcome
            log.debug("closing clients failed", exc_info=True)
        guard.uninstall()
    return 0

"""Run one task's checks and build its results document.

Used by the probe's CLI inside a job and, in-process, by ``hpctriton check``::

    from hpctriton_probe.runner import run_task
    from hpctriton_probe.spec import load_spec

    spec = load_spec("bundle/spec.json")
    results = run_task(spec.task(0), "results/0", run_id=spec.run_id, base_dir="bundle")

The order comes from what each check declares (``checks.base.Check``), never from its
name: first every check's ``before_all`` hook (the statistics' "before" snapshot), then
the checks by phase and, within a phase, in the spec's order. Checks that several probes
of the job run together (a load from several Slurm tasks, ``tasks: N`` under ``srun``)
go first, on the wall-clock schedule every rank computes from ``load_start_at``; checks
that measure the others (statistics) go last.

``run_task`` runs on rank 0 with ``load_ranks=N``; :func:`run_load_rank` runs on the
other ranks and does only the checks that take them, writing ``load/rank-<r>.json``
and no ``results.json``.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence

from hpctriton_probe import redact
from hpctriton_probe.checks import by_name
from hpctriton_probe.checks.base import ALONE, CheckContext, Launch
from hpctriton_probe.net import features
from hpctriton_probe.net.calls import Caller
from hpctriton_probe.net.clients import Clients, expand_headers, require_tritonclient
from hpctriton_probe.net.contact import Target, first_contact
from hpctriton_probe.results import (
    EXIT_INTERRUPTED,
    Interrupted,
    ResultsWriter,
    SigtermGuard,
    new_results,
    summarize,
    utc_now,
)
from hpctriton_probe.spec import CheckSpec, TaskSpec

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry, ResultsDocument

log = logging.getLogger("hpctriton_probe")

#: Within one check, results.json is rewritten at least this often (and after it).
SAVE_EVERY_S = 1.0


def run_order(checks: Sequence[CheckSpec], launched: int = 1) -> List[CheckSpec]:
    """``checks`` in the order rank 0 runs them, ``launched`` probes started: by the
    phase each declares, and within a phase in the spec's order."""
    return sorted(checks, key=lambda spec: by_name(spec.name).phase_for(spec.options, launched))


def rank_share(checks: Sequence[CheckSpec], rank: int, launched: int) -> List[CheckSpec]:
    """The checks rank ``rank`` (>= 1) of ``launched`` takes part in, in the spec's order."""
    return [spec for spec in checks
            if by_name(spec.name).ranks(spec.options, launched) > rank]


def _log_entry(entry: ResultEntry) -> None:
    log.info("%s %s %s %s: %s", entry["status"].upper(), entry["check"],
             entry["protocol"] or "-", entry["model"] or "-", entry["message"])


class _Runner:
    """What running checks of one task takes: clients, the caller, the data checks
    leave for each other, the SIGTERM guard."""

    def __init__(self, task: TaskSpec, out_dir: Optional[str], *, run_id: str,
                 base_dir: str, environ: Optional[Mapping[str, str]], launch: Launch) -> None:
        require_tritonclient()
        redact.install(log)
        headers = expand_headers(task.server.headers, environ)
        redact.hide(headers.values())
        self.task = task
        self.out_dir = out_dir
        self.run_id = run_id
        self.base_dir = base_dir
        self.launch = launch
        self.clients = Clients(task.server, base_dir=base_dir, headers=headers)
        self.caller = Caller(task.probe.retries, task.probe.retry_backoff_s)
        self.shared: Dict[str, Any] = {}
        self.guard = SigtermGuard(busy=self._writing)

    def _writing(self) -> bool:
        """Whether a SIGTERM now would tear a file being written (see ``SigtermGuard``)."""
        return False

    def context(self, spec: CheckSpec) -> CheckContext:
        return CheckContext(spec.name, spec.options, self.task, self.clients, self.caller,
                            base_dir=self.base_dir, shared=self.shared, run_id=self.run_id,
                            out_dir=self.out_dir, launch=self.launch)

    def _close_clients(self) -> None:
        try:
            self.clients.close()
        except Exception:  # noqa: BLE001 - closing must never lose results
            log.debug("closing clients failed", exc_info=True)


class TaskRunner(_Runner):
    """Runs a task's checks (rank 0) and keeps its results document on disk.

    Owns the task's state: the results document and its writer, the SIGTERM guard, the
    check running now (a SIGTERM leaves an entry naming it) and when the document was
    last saved.
    """

    def __init__(self, task: TaskSpec, out_dir: Optional[str] = None, *, run_id: str = "",
                 base_dir: str = ".", on_result: Optional[Callable[[ResultEntry], None]] = None,
                 environ: Optional[Mapping[str, str]] = None, launch: Launch = ALONE) -> None:
        super().__init__(task, out_dir, run_id=run_id, base_dir=base_dir, environ=environ,
                         launch=launch)
        self.on_result = on_result
        self.results = new_results(run_id, task.task, environ=environ)
        self._describe_run()
        self.writer = ResultsWriter(out_dir) if out_dir else None
        self.started = time.monotonic()
        #: The check running now (or whose hook is), named if a signal stops the run.
        self.current: Optional[str] = None
        self.last_save = 0.0

    def _describe_run(self) -> None:
        run = self.results["run"]
        run["workarounds"] = features.workarounds()
        s = self.task.server
        run["server"] = {"host": s.host, "http_port": s.http_port, "grpc_port": s.grpc_port,
                         "metrics_port": s.metrics_port, "tls": s.tls is not None}
        run["models"] = list(self.task.models)
        run["checks_planned"] = [c.name for c in self.task.checks]
        run["point"] = dict(self.task.point)

    def _writing(self) -> bool:
        return self.writer is not None and self.writer.writing

    def run(self, handle_sigterm: bool = False) -> ResultsDocument:
        """Run every check; return the results document (also on SIGTERM, marked
        interrupted). SIGINT is re-raised once the results are saved."""
        if handle_sigterm:
            self.guard.install()
        try:
            self.save()
            self._first_contact()
            self._run_checks()
        except (Interrupted, KeyboardInterrupt) as exc:
            self._note_interruption("SIGTERM" if isinstance(exc, Interrupted) else "SIGINT")
            if isinstance(exc, KeyboardInterrupt):
                self._finish()
                raise
        self._finish()
        return self.results

    def _first_contact(self) -> None:
        """Ask every endpoint the checks use whether it answers at all, all at once
        (``net.contact``), each within the longest timeout of the checks that use it
        (so no check would have waited longer): one that does not is silent for the
        whole run, so a server that accepts connections and never answers costs one
        timeout, not one per endpoint and check. ``run.first_contact`` records what was
        found."""
        targets: Dict[str, Target] = {}
        server = self.task.server
        for spec in self.task.checks:
            check = by_name(spec.name)
            timeout = float(getattr(spec.options, "timeout_s", None)
                            or self.task.probe.timeout_s)
            for kind in check.endpoints(spec.options):
                url = server.url(kind)
                if url is None:
                    continue
                endpoint = f"{kind}://{url}"
                path = "/v2/health/live"
                if kind == "metrics":
                    path = str(getattr(spec.options, "path", "/metrics") or "/metrics")
                    path = path if path.startswith("/") else "/" + path
                known = targets.get(endpoint)
                if known is None or timeout > known.timeout_s:
                    port = getattr(server, kind + "_port")
                    targets[endpoint] = Target(endpoint, kind, server.host, int(port), timeout,
                                               tls=server.tls is not None and kind != "metrics",
                                               path=path)
        if not targets:
            return
        started = time.monotonic()
        outcomes = first_contact(list(targets.values()))
        silent = []
        for endpoint, outcome in sorted(outcomes.items()):
            log.debug("first contact with %s: %s after %.3f s", endpoint, outcome.detail,
                      outcome.elapsed_s)
            if outcome.silent:
                silent.append(endpoint)
                self.caller.mark_silent(endpoint, targets[endpoint].timeout_s,
                                        outcome.elapsed_s)
        duration = round(time.monotonic() - started, 3)
        self.results["run"]["first_contact"] = {"duration_s": duration, "silent": silent}
        if silent:
            log.warning("not answering within their timeout at first contact: %s; every "
                        "check fails at once there", ", ".join(silent))

    def _run_checks(self) -> None:
        for spec in self.task.checks:
            hook = by_name(spec.name).before_all
            if hook is not None:
                self.current = self.caller.check = spec.name
                self.caller.in_hook = True
                try:
                    hook(self.context(spec))
                except Exception:  # noqa: BLE001 - the check's entries will say what is wrong
                    log.error("check %s: what it does before all checks failed:\n%s",
                              spec.name, traceback.format_exc())
                finally:
                    self.caller.in_hook = False
        for spec in run_order(self.task.checks, self.launch.ranks):
            self._run_check(spec)
        self.current = self.caller.check = None

    def _run_check(self, spec: CheckSpec) -> None:
        self.current = self.caller.check = spec.name
        ctx = self.context(spec)
        t0 = time.monotonic()
        try:
            for entry in by_name(spec.name).run(ctx):
                self.record(entry)
        except Exception as exc:  # noqa: BLE001 - a probe bug must not lose other checks
            log.error("check %s crashed:\n%s", spec.name, traceback.format_exc())
            self.record(ctx.entry(None, None, "error", "the probe failed in this check: "
                                  f"{type(exc).__name__}: {exc}", {}, t0))
        self.current = None
        self.save()

    def record(self, entry: ResultEntry) -> None:
        # header values never reach results, stdout or JUnit, whatever a client says
        entry["message"] = redact.redact(entry["message"])
        entry["details"] = redact.redact_data(entry["details"])
        self.results["checks"].append(entry)
        _log_entry(entry)
        # Written after every check (above), and within a long check at least every
        # SAVE_EVERY_S seconds; SIGTERM writes whatever was recorded.
        if time.monotonic() - self.last_save >= SAVE_EVERY_S:
            self.save()
        if self.on_result is not None:
            self.on_result(entry)

    def save(self, final: bool = False) -> None:
        """Bring the document up to date (duration, summary) and write it, if asked to."""
        self.results["run"]["duration_s"] = round(time.monotonic() - self.started, 3)
        self.results["run"]["workarounds"] = features.workarounds()
        self.results["summary"] = summarize(self.results["checks"])
        self.last_save = time.monotonic()
        if self.writer is not None:
            self.writer.write(self.results, durable=final)
            if not final:
                self.guard.check_pending()

    def _note_interruption(self, signame: str) -> None:
        run = self.results["run"]
        run["interrupted"] = True
        run["interrupted_by"] = signame
        if self.current:
            entry: ResultEntry = {
                "check": self.current, "protocol": None, "model": None,
                "status": "error", "duration_s": 0.0,
                "message": f"interrupted by {signame} before this check finished",
                "details": {}}
            self.results["checks"].append(entry)
            if self.on_result is not None:
                self.on_result(entry)
        log.warning("interrupted by %s during %s", signame, self.current or "start-up")

    def _finish(self) -> None:
        # Keep the guard installed but spent: a further SIGTERM (batch systems send more
        # than one) is ignored until the final results are on disk, instead of killing
        # the probe with the default action half-way through.
        self.guard.fired = True
        self.guard.pending = None
        self.results["run"]["ended_at"] = utc_now()
        self._close_clients()
        self.save(final=True)
        self.guard.uninstall()


class RankRunner(_Runner):
    """Rank ``launch.rank`` (>= 1) of checks that several probes of a job run together:
    only the checks that take this rank; their entries go to the log (rank 0 reports,
    the checks write their own files)."""

    def run(self, handle_sigterm: bool = False) -> int:
        """0 when the checks ran (their figures, errors included, are in their files) or
        there was nothing to do; ``EXIT_INTERRUPTED`` when a signal stopped them."""
        rank = self.launch.rank
        mine = rank_share(self.task.checks, rank, self.launch.ranks)
        if handle_sigterm:
            self.guard.install()
        try:
            for spec in mine:
                try:
                    for entry in by_name(spec.name).run(self.context(spec)):
                        _log_entry(entry)
                except Exception:  # noqa: BLE001 - one check must not stop the next
                    log.error("check %s crashed on rank %d:\n%s", spec.name, rank,
                              traceback.format_exc())
        except (Interrupted, KeyboardInterrupt):
            log.warning("rank %d interrupted", rank)
            return EXIT_INTERRUPTED
        finally:
            self.guard.fired = True
            self._close_clients()
            self.guard.uninstall()
        return 0


def run_task(
    task: TaskSpec,
    out_dir: Optional[str] = None,
    *,
    run_id: str = "",
    base_dir: str = ".",
    on_result: Optional[Callable[[ResultEntry], None]] = None,
    environ: Optional[Mapping[str, str]] = None,
    handle_sigterm: bool = False,
    load_ranks: int = 1,
    load_start_at: Optional[float] = None,
) -> ResultsDocument:
    """Run ``task``'s checks; return the results document (README's ``results.json``).

    ``out_dir`` (optional): write ``out_dir/results.json`` at the start, after every
    check (within a long check, every second) and at the end. ``base_dir``: where
    relative file paths of the spec (input data, expected outputs, TLS files) are found.
    ``on_result`` is called with each entry as it is recorded. ``handle_sigterm`` (the
    CLI sets it; main thread only) turns SIGTERM into a clean stop: ``run.interrupted``
    is true in the returned and written results. ``load_ranks`` (> 1 under ``srun``):
    how many probes the job started for load checks with ``tasks`` > 1; this is rank 0.

    Raises ``ProbeDependencyError`` when tritonclient or numpy is missing and
    ``SpecError`` when a header names an unset environment variable.
    """
    runner = TaskRunner(task, out_dir, run_id=run_id, base_dir=base_dir, on_result=on_result,
                        environ=environ, launch=Launch(0, max(1, load_ranks), load_start_at))
    return runner.run(handle_sigterm=handle_sigterm)


def run_load_rank(
    task: TaskSpec,
    out_dir: str,
    *,
    rank: int,
    ranks: int,
    start_at: Optional[float],
    run_id: str = "",
    base_dir: str = ".",
    environ: Optional[Mapping[str, str]] = None,
    handle_sigterm: bool = False,
) -> int:
    """Rank ``rank`` (>= 1) of a load from several tasks: run only the load checks with
    ``tasks`` > ``rank``, on the common schedule; their windows go to
    ``out_dir/load/rank-<rank>.json`` (rank 0 writes results.json). Returns 0 when the
    load ran (its figures, errors included, are in the rank file) or there was nothing
    to do; 143 when interrupted.
    """
    runner = RankRunner(task, out_dir, run_id=run_id, base_dir=base_dir, environ=environ,
                        launch=Launch(rank, max(1, ranks), start_at))
    return runner.run(handle_sigterm=handle_sigterm)

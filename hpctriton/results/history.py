"""Every run of a schedule (or of a config) over time: verdicts and figures, oldest first.

``hpctriton history`` prints this as a table, ``--html`` draws it as trend lines and
``--json`` gives it as ``{"runs": [{"run_id", "started_at", "verdict", ...}]}``. A run's
``verdict`` is one of:

* ``ok``: every check passed (or was skipped), and no figure is worse than the
  baseline beyond noise (:mod:`hpctriton.results.regression`);
* ``failed``: a check failed or erred, or the job ended without results;
* ``regressed``: the checks passed but a figure is worse than the baseline's beyond
  noise (only with a baseline: ``history --baseline NAME``, or the baseline named like
  the schedule);
* ``missing``: the run was due and did not happen (the chain broke, or its job vanished
  before it started): a gap in the trend lines.

Figures per run: for each load point (model, protocol, level) its throughput and latency
percentiles, TTFT where the model streams, the capacity answer where the load check gave
one (``details.capacity.rate_per_s``), and the server's version (metadata), so that a
change of version can be marked.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctriton.results.measures import measures
from hpctriton.results.model import Results, worst_status
from hpctriton.results.regression import Gate, Tolerance, judge
from hpctriton.results.streaming import stream_measures
from hpctriton.runs.record import RunRecord
from hpctriton.runs.schedules import Members, Schedule

log = logging.getLogger("hpctriton.results.history")

VERDICTS = ("ok", "failed", "regressed", "missing")
#: Load figures kept per point, in this order (streaming models add TTFT).
FIGURES = ("throughput", "p50", "p90", "p99", "TTFT p50", "TTFT p99")


@dataclass
class HistoryRun:
    """One run (or one due run that did not happen) of a history."""

    run_id: str
    verdict: str
    started_at: str | None = None
    #: The link's number in its schedule, and when it was due.
    seq: int | None = None
    due_at: str | None = None
    #: Check name -> the worst status of its results.
    checks: dict[str, str] = field(default_factory=dict)
    #: Point (``simple grpc, concurrency 2``) -> figure -> value.
    figures: dict[str, dict[str, float]] = field(default_factory=dict)
    capacity_rps: float | None = None
    server_version: str | None = None
    #: Why the verdict is not ok: failed checks, regressed figures (with their rule).
    reasons: list[str] = field(default_factory=list)
    path: Path | None = None
    gate: Gate | None = None

    @property
    def when(self) -> str | None:
        """When it ran, else when it was due."""
        return self.started_at or self.due_at

    def figure(self, point: str, metric: str) -> float | None:
        return self.figures.get(point, {}).get(metric)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "started_at": self.started_at,
                "verdict": self.verdict, "seq": self.seq, "due_at": self.due_at,
                "checks": self.checks, "figures": self.figures,
                "capacity_rps": self.capacity_rps, "server_version": self.server_version,
                "reasons": self.reasons, "path": str(self.path) if self.path else None}


@dataclass
class History:
    """Runs oldest first, and what could not be shown yet."""

    title: str
    runs: list[HistoryRun]
    baseline: str | None = None
    interval_s: int | None = None
    #: Links that have not ended yet, or ended and are not collected yet.
    waiting: list[str] = field(default_factory=list)
    not_collected: list[str] = field(default_factory=list)

    @property
    def points(self) -> list[str]:
        """Every load point of any run, in the order first seen."""
        return list(dict.fromkeys(p for r in self.runs for p in r.figures))

    def version_changes(self) -> list[tuple[int, str | None, str]]:
        """``(index of the run, old version, new version)`` where the server changed."""
        out: list[tuple[int, str | None, str]] = []
        last: str | None = None
        for i, run in enumerate(self.runs):
            if run.server_version is None:
                continue
            if last is not None and run.server_version != last:
                out.append((i, last, run.server_version))
            last = run.server_version
        return out

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "baseline": self.baseline,
                "interval_s": self.interval_s, "runs": [r.to_json() for r in self.runs],
                "waiting": self.waiting, "not_collected": self.not_collected,
                "version_changes": [{"run_id": self.runs[i].run_id, "from": a, "to": b}
                                    for i, a, b in self.version_changes()]}


# ----------------------------------------------------------------- one run


def _capacity(results: Results) -> float | None:
    for c in results.checks:
        cap = c.details.get("capacity") if isinstance(c.details, dict) else None
        if isinstance(cap, dict):
            value = cap.get("rate_per_s")
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def _server_version(results: Results) -> str | None:
    for c in results.checks:
        if c.check == "metadata" and c.model is None and c.status == "pass":
            version = c.details.get("version")
            if isinstance(version, str) and version:
                return version
    return None


def _started(results: Results) -> str | None:
    times = [t.started_at for t in results.tasks if t.started_at]
    return min(times) if times else None


def figures_of(results: Results) -> dict[str, dict[str, float]]:
    """Point -> figure -> value of a run's load points (see :data:`FIGURES`)."""
    out: dict[str, dict[str, float]] = {}
    for m in measures(results) + stream_measures(results):
        if m.section != "load" or m.metric not in FIGURES:
            continue
        point = m.subject + (f" [{m.scope}]" if m.scope else "")
        out.setdefault(point, {})[m.metric] = m.value
    return out


def run_of(record: RunRecord, *, seq: int | None = None, due_at: str | None = None,
           baseline: RunRecord | None = None,
           tolerances: Mapping[str, Tolerance] | None = None) -> HistoryRun | None:
    """The history entry of a run with collected results (None: nothing collected)."""
    from hpctriton.runs.collect import OWNERSHIP

    if not (record.results_dir / OWNERSHIP).is_file() and not (
            record.results_dir.is_dir() and any(record.results_dir.glob("*/results.json"))):
        return None
    results = Results.from_run_dir(record.path)
    run = HistoryRun(record.run_id, "ok", _started(results) or record.created_at, seq,
                     due_at, path=record.path)
    by_check: dict[str, list[str]] = {}
    for c in results.checks:
        by_check.setdefault(c.check, []).append(c.status)
    run.checks = {name: worst_status(statuses) or "?" for name, statuses in by_check.items()}
    run.figures = figures_of(results)
    run.capacity_rps = _capacity(results)
    run.server_version = _server_version(results)
    if not results.ok:
        run.verdict = "failed"
        run.reasons = [f"{c.check}{'[' + c.protocol + ']' if c.protocol else ''}"
                       f"{' ' + c.model if c.model else ''}: {c.status}: {c.message}"
                       for c in results.failures][:5]
        run.reasons += [p for t in results.tasks for p in t.problems][:5]
        if not run.reasons:
            run.reasons = ["no results: the job ended before the probe wrote any"]
    elif baseline is not None and baseline.path != record.path:
        run.gate = judge(Results.from_run_dir(baseline.path), results,
                         baseline_dir=baseline.results_dir, run_dir=record.results_dir,
                         tolerances=tolerances)
        if run.gate.regressed:
            run.verdict = "regressed"
            run.reasons = [f"{j.subject} {j.metric}: {j.baseline:g} -> {j.value:g} {j.unit} "
                           f"({j.rule})" if j.value is not None and j.baseline is not None
                           else f"{j.subject}: {j.rule}" for j in run.gate.regressions]
    return run


# ------------------------------------------------------------------ histories


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="seconds")


def schedule_history(schedule: Schedule, members: Members, *,
                     baseline: RunRecord | None = None,
                     tolerances: Mapping[str, Tolerance] | None = None) -> History:
    """Every link of a schedule: those collected, with their figures; those due that did
    not happen, as ``missing``; those still to come or not collected, listed apart."""
    from hpctriton.runs.schedules import member_record

    history = History(f"schedule {schedule.name}", [], baseline.run_id if baseline else None,
                      schedule.interval_s)
    for member in members.links:
        if member.stopped:
            continue
        if member.missing:
            history.runs.append(HistoryRun(member.run_id, "missing", None, member.seq,
                                           _iso(member.due_at),
                                           reasons=[member.submit_error and
                                                    f"the link was not submitted: "
                                                    f"{member.submit_error}" or
                                                    "due, and never started"]))
            continue
        if member.started_at is None:
            history.waiting.append(member.run_id)
            continue
        record = member_record(schedule, member)
        run = run_of(record, seq=member.seq, due_at=_iso(member.due_at), baseline=baseline,
                     tolerances=tolerances)
        if run is None:
            if member.ended_at is None:
                history.waiting.append(member.run_id)
            else:
                history.not_collected.append(member.run_id)
            continue
        if run.started_at is None:
            run.started_at = _iso(member.started_at)
        history.runs.append(run)
    return history


def runs_history(records: Iterable[RunRecord], title: str, *,
                 baseline: RunRecord | None = None,
                 tolerances: Mapping[str, Tolerance] | None = None) -> History:
    """Every collected run of ``records`` (a config's runs_dir), oldest first."""
    history = History(title, [], baseline.run_id if baseline else None)
    for record in sorted(records, key=lambda r: (r.created_at, r.run_id)):
        run = run_of(record, baseline=baseline, tolerances=tolerances)
        if run is None:
            history.not_collected.append(record.run_id)
        else:
            history.runs.append(run)
    history.runs.sort(key=lambda r: (r.when or "", r.run_id))
    return history


def newest(history: History, verdicts: Sequence[str] = VERDICTS) -> HistoryRun | None:
    """The newest run with one of ``verdicts``."""
    found = [r for r in history.runs if r.verdict in verdicts]
    return found[-1] if found else None

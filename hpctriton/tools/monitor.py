"""Monitoring, put together: collect every ended link of a schedule in one stream, build
its history, and notify (once per run and event) about runs that failed, regressed or
went missing; and :func:`notify_run`, the same alert for one run that ``submit --wait``,
``wait`` or ``collect RUN`` just collected (cron on DiCOS or this machine, where there is
no schedule). The pieces: :mod:`hpctriton.runs.schedules` (the chain),
:func:`hpctriton.runs.collect.collect_many` (one tar stream), :mod:`hpctriton.results.history`
and :mod:`hpctriton.results.regression` (verdicts), :mod:`hpctriton.tools.notify`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctriton.errors import HpctritonError
from hpctriton.results.history import History, run_of, schedule_history
from hpctriton.results.regression import Tolerance
from hpctriton.runs import baselines, watch
from hpctriton.runs.collect import CollectReport, collect_many
from hpctriton.runs.record import RunRecord, atomic_write
from hpctriton.runs.schedules import (
    Members,
    Schedule,
    local_members,
    member_record,
    read_members,
)
from hpctriton.schedulers import get_scheduler
from hpctriton.tools.notify import Event, send

log = logging.getLogger("hpctriton.monitor")
NOTIFIED = "notified.json"


@dataclass
class CollectAll:
    """What ``collect --all`` did."""

    schedule: Schedule
    members: Members
    reports: dict[str, CollectReport]
    history: History
    notified: list[dict[str, Any]] = field(default_factory=list)
    notify_problems: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return all(r.complete for r in self.reports.values())

    def to_json(self) -> dict[str, Any]:
        return {"schedule": self.schedule.name,
                "runs": {k: v.to_json() for k, v in self.reports.items()},
                "fetched": sorted(k for k, v in self.reports.items() if v.fetched),
                "complete": self.complete, "notified": self.notified,
                "notify_problems": self.notify_problems,
                "history": self.history.to_json()}


def baseline_record(schedule: Schedule | None, name: str | None, *,
                    config_name: str | None = None) -> RunRecord | None:
    """The baseline asked for by name, else the one named like the schedule (if set), else
    (runs outside a schedule) the one named like the config's ``name:`` (if set)."""
    wanted = name or (schedule.baseline or schedule.name if schedule is not None
                      else config_name)
    if wanted is None:
        return None
    found = baselines.get_baseline(wanted) if name else baselines.find_baseline(wanted)
    return RunRecord.load(found.path) if found is not None else None


def collect_schedule(schedule: Schedule, *, max_mb: int | None = None,
                     baseline: str | None = None,
                     tolerances: Mapping[str, Tolerance] | None = None,
                     notify: bool = True) -> CollectAll:
    """Every link that ended, fetched through one SSH connection and one tar stream."""
    scheduler = get_scheduler(schedule.backend)
    with schedule.transport() as transport:
        members = read_members(schedule, transport)
        items: list[tuple[RunRecord, list[int]]] = []
        for member in members.links:
            if member.started_at is None or member.stopped or member.missing:
                continue
            record = member_record(schedule, member)
            if member.ended_at is None:
                # killed before it logged its end (a time limit)? its state files say
                try:
                    if not watch.status(transport, scheduler, record).done:
                        continue
                except HpctritonError as exc:
                    log.warning("run %s: cannot read its state: %s", record.run_id, exc)
                    continue
            items.append((record, list(range(record.n_tasks))))
        limit = max_mb or schedule.config_record().cluster_config().collect_max_mb
        reports = collect_many(transport, scheduler, items, f"{schedule.remote_dir}/runs",
                               max_mb=limit) if items else {}
    history = schedule_history(schedule, members,
                               baseline=baseline_record(schedule, baseline),
                               tolerances=tolerances)
    result = CollectAll(schedule, members, reports, history)
    if notify:
        notify_history(schedule, history, result)
    return result


def _read_notified(schedule: Schedule) -> dict[str, str]:
    try:
        data = json.loads((schedule.path / NOTIFIED).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def notify_history(schedule: Schedule, history: History, result: CollectAll) -> None:
    """Notify once per run and verdict (failed, regressed, missing)."""
    config = schedule.config_record().config()
    notify = config.notify
    if notify is None:
        return
    done = _read_notified(schedule)
    for run in history.runs:
        if run.verdict == "ok" or done.get(run.run_id) == run.verdict:
            continue
        if run.path is not None and _notified_verdict(run.path) == run.verdict:
            done[run.run_id] = run.verdict  # `collect RUN` told already
            continue
        event = Event(run.verdict, run.run_id, schedule.name, schedule.cluster, schedule.host,
                      run.started_at, run.due_at, run.reasons,
                      str(run.path) if run.path else None)
        problems = send(notify, event)
        result.notify_problems += problems
        if not problems and run.verdict in notify.on:
            result.notified.append(event.to_json())
            if run.path is not None and run.path.is_dir():
                _remember(run.path, run.run_id, run.verdict)
        done[run.run_id] = run.verdict
    atomic_write(schedule.path / NOTIFIED, json.dumps(done, indent=1) + "\n")


def history_of_schedule(schedule: Schedule, *, refresh: bool = False,
                        baseline: str | None = None,
                        tolerances: Mapping[str, Tolerance] | None = None) -> History:
    """The schedule's history from what is here (``refresh``: read the cluster's record
    of its links first: one SSH call, no results fetched)."""
    if refresh:
        with schedule.transport() as transport:
            members = read_members(schedule, transport)
    else:
        members = local_members(schedule)
    return schedule_history(schedule, members, baseline=baseline_record(schedule, baseline),
                            tolerances=tolerances)


# ------------------------------------------------------------- one run, no schedule


@dataclass
class RunNotice:
    """What :func:`notify_run` did: whether the config has ``notify:``, the verdict it
    judged (None: nothing collected to judge), the event it delivered, and why a
    notification failed."""

    configured: bool = False
    verdict: str | None = None
    notified: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "notified": self.notified,
                "notify_problems": self.problems}


def _notified_verdict(run_dir: Path) -> str | None:
    """The verdict last notified for the run in ``run_dir`` (its ``notified.json``)."""
    try:
        data = json.loads((run_dir / NOTIFIED).read_text(encoding="utf-8"))
        return str(data.get("verdict")) if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def _remember(run_dir: Path, run_id: str, verdict: str) -> None:
    try:
        atomic_write(run_dir / NOTIFIED,
                     json.dumps({"run_id": run_id, "verdict": verdict}, indent=1) + "\n")
    except OSError as exc:  # told again next time: better than an exception after a send
        log.warning("run %s: cannot remember the notification: %s", run_id, exc)


def notify_run(record: RunRecord, *, ended: bool = False) -> RunNotice:
    """After a run outside a schedule was collected (``submit --wait``, ``wait``,
    ``collect RUN``): when its config has ``notify:``, judge it as ``history`` does and
    send ``failed`` (a check failed or erred, or, with ``ended``, the run ended without
    results) or ``regressed`` (against the baseline named like the config's ``name:``,
    when one is set), as ``notify.on`` allows. Once per run and verdict: a delivered
    event is remembered in the run folder's ``notified.json``, one that failed is sent
    again by the next collect. Never raises for the notification: problems are returned
    (the caller says them on stderr; they change no exit code)."""
    try:
        config = record.config()
    except HpctritonError as exc:
        return RunNotice(problems=[f"notify: {str(exc).splitlines()[0]}"])
    notify = config.notify
    if notify is None:
        return RunNotice()
    try:
        baseline = baseline_record(None, None, config_name=config.name)
        judged = run_of(record, baseline=baseline)
    except (HpctritonError, OSError, ValueError) as exc:
        return RunNotice(True, problems=[f"notify: run {record.run_id} not judged: "
                                         f"{str(exc).splitlines()[0]}"])
    if judged is None:
        if not ended:
            return RunNotice(True)  # nothing collected yet: a later collect judges it
        verdict = "failed"
        reasons = ["no results: the job ended before the probe wrote any"]
        started_at = None
    else:
        verdict, reasons, started_at = judged.verdict, judged.reasons, judged.started_at
    notice = RunNotice(True, verdict)
    if verdict not in notify.on or _notified_verdict(record.path) == verdict:
        return notice
    event = Event(verdict, record.run_id, None, record.cluster, record.host, started_at,
                  None, reasons, str(record.path))
    notice.problems = send(notify, event)
    if not notice.problems:
        notice.notified = event.to_json()
        _remember(record.path, record.run_id, verdict)
    return notice

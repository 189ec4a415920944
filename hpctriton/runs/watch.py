"""Status and waiting: state files first, the scheduler only as a hint.

Waiting runs a small bash loop on the remote side that watches every unfinished
task's ``state.json`` with shell built-ins (no process per file) and prints a line the
moment one appears or finishes; the client reads those lines from one SSH channel. It
asks the scheduler at most once per ``hint_interval_s`` (30 s, growing while nothing
changes) to learn about jobs that never started, were cancelled or vanished.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hpctriton.errors import CommandError, RemoteError
from hpctriton.runs.record import RunRecord
from hpctriton.runs.states import DAMAGED, TaskStatus, combine
from hpctriton.schedulers import JobState, Scheduler, SchedulerInfo
from hpctriton.shell import templates as templating
from hpctriton.transport import Transport

log = logging.getLogger("hpctriton.runs.watch")

#: Seconds between scheduler hints: the first, and the cap it backs off to.
HINT_INTERVAL_S = 30.0
HINT_INTERVAL_MAX_S = 120.0  # below Slurm's default MinJobAge (300 s): no purge is missed
#: Hints in a row without a state file or a scheduler record before a task counts as
#: vanished (failed): the scheduler purges finished jobs after MinJobAge (300 s).
VANISHED_AFTER = 2
#: Transient failures in a row of the state-file watch before the wait gives up.
STREAM_RETRIES = 5
#: Failed scheduler queries in a row (not transient) that end the wait with an error.
POLL_FAILURES_FATAL = 3
#: After every task has ended: how often, and how far apart, to ask why interrupted
#: tasks were interrupted (timeout or cancel) while the scheduler finishes them off.
FINAL_WORD_TRIES = 10
FINAL_WORD_GAP_S = 2.0
#: How often the remote loop looks at the state files: every 0.2 s, slower for many
#: pending tasks so a shared file system sees at most about 500 stats a second.
POLL_S = 0.2
POLL_MAX_S = 2.0


def poll_interval(pending: int) -> float:
    """Seconds between looks at ``pending`` state files."""
    return round(min(POLL_MAX_S, max(POLL_S, pending / 500)), 2)


def _parse_state(text: str) -> dict[str, object] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _state_or_damaged(text: str) -> dict[str, object]:
    """A state file's line; one that is empty or not JSON is recorded as damaged (job.sh
    replaces the file by rename, so a reader never sees half of one: a bad file is the
    job's failed write, a full disk)."""
    parsed = _parse_state(text)
    if parsed is not None and parsed.get("phase") in ("running", "finished"):
        return parsed
    return {"phase": DAMAGED, "raw": text.strip()[:60]}


def read_states(transport: Transport, record: RunRecord,
                tasks: Sequence[int]) -> dict[int, dict[str, object]]:
    """Every existing ``results/<task>/state.json`` of ``tasks``, in one remote call."""
    if not tasks:
        return {}
    script = templating.render("hpctriton.runs:read_states.sh.j2",
                               results_dir=f"{record.remote_dir}/results", tasks=list(tasks))
    result = transport.run_script(script)
    states: dict[int, dict[str, object]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("@@STATE "):
            _, task, text = (line.split(" ", 2) + [""])[:3]
            if task.isdigit():
                states[int(task)] = _state_or_damaged(text)
    return states


def wait_script(remote_dir: str, pending: Sequence[int], slice_s: float,
                started: Sequence[int] = ()) -> str:
    """The remote loop: one line per task that starts or finishes, for ``slice_s`` s."""
    return templating.render("hpctriton.runs:wait_states.sh.j2",
                             results_dir=f"{remote_dir}/results",
                             pending=list(pending), started=list(started),
                             slice_s=max(1, int(slice_s)), poll_s=poll_interval(len(pending)))


@dataclass
class RunStatus:
    """Every task's status, and when the scheduler was last asked."""

    tasks: dict[int, TaskStatus] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return all(s.state.final for s in self.tasks.values())

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for status in self.tasks.values():
            out[status.state.value] = out.get(status.state.value, 0) + 1
        return out

    @property
    def overall(self) -> JobState:
        """One word for the run: the least advanced state, or the worst final one."""
        states = [s.state for s in self.tasks.values()]
        for state in (JobState.PENDING, JobState.RUNNING, JobState.UNKNOWN):
            if state in states:
                return state
        for state in (JobState.FAILED, JobState.TIMEOUT, JobState.CANCELLED):
            if state in states:
                return state
        return JobState.SUCCEEDED


def collected_states(record: RunRecord) -> dict[int, dict[str, object]]:
    """State files already collected into the run folder (DiCOS: the only ones there are)."""
    states: dict[int, dict[str, object]] = {}
    for task in range(record.n_tasks):
        path = record.results_dir / str(task) / "state.json"
        if path.is_file() and not path.is_symlink():
            states[task] = _state_or_damaged(path.read_text(encoding="utf-8", errors="replace"))
    return states


def blocked_tasks(record: RunRecord) -> dict[int, str]:
    """Tasks that failed for pending too long on a reason only an administrator can clear
    (their jobs were cancelled; recorded in the run's events) -> why. A resubmission of
    a task clears it."""
    found: dict[int, str] = {}
    for event in record.events:
        kind, tasks = event.get("event"), event.get("tasks")
        blocked = event.get("blocked")
        if kind == "cancel" and isinstance(blocked, dict):
            found.update({int(t): str(why) for t, why in blocked.items() if str(t).isdigit()})
        elif kind == "resubmit" and isinstance(tasks, list):
            for task in tasks:
                found.pop(task, None)
    return found


def _with_blocked(status: TaskStatus, blocked: dict[int, str]) -> TaskStatus:
    why = blocked.get(status.task)
    if why is None or status.source == "state.json":
        return status  # it did start after all: its own state file is the truth
    return replace(status, state=JobState.FAILED, reason=why)


def status(transport: Transport, scheduler: Scheduler[Any], record: RunRecord,
           *, ask_scheduler: bool = True) -> RunStatus:
    """State files first (one call), then one scheduler call for the tasks they leave open."""
    tasks = list(range(record.n_tasks))
    reachable = scheduler.capabilities.state_files_reachable
    states = read_states(transport, record, tasks) if reachable else collected_states(record)
    open_tasks = [t for t in tasks if not _final_from_state(states.get(t))]
    hints: dict[int, SchedulerInfo] = {}
    if ask_scheduler and open_tasks:
        hints = scheduler.poll(transport, record, open_tasks)
    blocked = blocked_tasks(record)
    return RunStatus({t: _with_blocked(combine(t, states.get(t), hints.get(t),
                                               state_expected=reachable), blocked)
                      for t in tasks})


def seconds_since(iso: str | None) -> float | None:
    """Seconds from an ISO 8601 time (run records write UTC) to now; None if unreadable."""
    if not iso:
        return None
    try:
        then = _dt.datetime.fromisoformat(iso)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=_dt.timezone.utc)
    return (_dt.datetime.now(_dt.timezone.utc) - then).total_seconds()


def _final_from_state(state: dict[str, object] | None) -> bool:
    """A finished, uninterrupted state file needs no scheduler word."""
    return bool(state and state.get("phase") == "finished" and not state.get("interrupted"))


ProgressCallback = Callable[[RunStatus], None]


@dataclass
class Waiter:
    """Waits for a run; ``on_change`` is called whenever a task's status changes."""

    transport: Transport
    scheduler: Scheduler[Any]
    record: RunRecord
    on_change: ProgressCallback | None = None
    hint_interval_s: float = HINT_INTERVAL_S
    hint_interval_max_s: float = HINT_INTERVAL_MAX_S
    #: Unit tests shorten the remote slices; the default is the hint interval.
    slice_s: float | None = None
    #: A task pending this long (since the submit) for a reason only an administrator
    #: can clear (``Scheduler.blocked``) fails, and its job is cancelled. None: never.
    max_pending_s: float | None = None
    scheduler_calls: int = 0
    _states: dict[int, dict[str, object]] = field(default_factory=dict)
    _hints: dict[int, SchedulerInfo] = field(default_factory=dict)
    _status: RunStatus = field(default_factory=RunStatus)
    #: Consecutive hints in which a task had neither a state file nor a scheduler record.
    _absent: dict[int, int] = field(default_factory=dict)
    _poll_failures: int = 0
    #: Tasks failed as blocked (from the record, and by this wait) -> why.
    _blocked: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._blocked = blocked_tasks(self.record)

    @property
    def _reachable(self) -> bool:
        return self.scheduler.capabilities.state_files_reachable

    def _combined(self, task: int) -> TaskStatus:
        status = _with_blocked(combine(task, self._states.get(task), self._hints.get(task),
                                       state_expected=self._reachable), self._blocked)
        if status.state == JobState.UNKNOWN and self._absent.get(task, 0) >= VANISHED_AFTER:
            return replace(status, state=JobState.FAILED,
                           reason="vanished: no state file, and the scheduler no longer "
                                  "knows the job (purged after MinJobAge?)")
        return status

    def _update(self) -> bool:
        new = RunStatus({t: self._combined(t) for t in range(self.record.n_tasks)})
        changed = new.tasks != self._status.tasks
        self._status = new
        if changed and self.on_change is not None:
            self.on_change(new)
        return changed

    def _needs_final_word(self) -> list[int]:
        """Interrupted tasks whose cause (timeout or cancel) the scheduler has not yet
        confirmed; it may still be ending the job when the state file appears."""
        return [t for t, s in self._states.items()
                if s.get("interrupted") and not (t in self._hints and self._hints[t].state.final)]

    def _hint(self) -> None:
        open_tasks = sorted({t for t, s in self._status.tasks.items() if not s.state.final}
                            | set(self._needs_final_word()))
        if not open_tasks:
            return
        self.scheduler_calls += 1
        try:
            hints = self.scheduler.poll(self.transport, self.record, open_tasks)
        except (CommandError, RemoteError) as exc:
            self._poll_failures += 1
            if not exc.transient and self._poll_failures >= POLL_FAILURES_FATAL:
                raise
            log.warning("scheduler query failed (will retry later): %s", exc)
            return
        self._poll_failures = 0
        self._hints.update(hints)
        if self._reachable:
            # The scheduler says "ended" but the state file we last saw says running (or
            # was not there): the job may have just finished; read its file again rather
            # than believe the hint.
            stale = [t for t, h in hints.items()
                     if h.state.final and self._states.get(t, {}).get("phase") != "finished"]
            if stale:
                self._states.update(read_states(self.transport, self.record, stale))
        for task, hint in hints.items():
            state = self._states.get(task)
            if (state and state.get("phase") == "finished" and state.get("interrupted")
                    and hint.state == JobState.PENDING):
                del self._states[task]  # requeued (preempted): watch its next attempt
        for task in open_tasks:
            absent = task not in hints and task not in self._states and bool(self.record.jobs)
            self._absent[task] = self._absent.get(task, 0) + 1 if absent else 0
        self._give_up_blocked()

    def _give_up_blocked(self) -> None:
        """Fail (and cancel) tasks pending longer than ``max_pending_s`` for a reason
        only an administrator can clear; say so in their status and on stderr."""
        if self.max_pending_s is None:
            return
        waited = seconds_since(self.record.submitted_at or self.record.created_at)
        if waited is None or waited < self.max_pending_s:
            return
        pending = {t: h for t, h in self._hints.items()
                   if h.state == JobState.PENDING and t not in self._states
                   and t not in self._blocked}
        if not pending:
            return
        found = self.scheduler.blocked(self.transport, self.record, pending)
        if not found:
            return
        tasks = sorted(found)
        try:
            self.scheduler.cancel(self.transport, self.record, tasks)
            outcome = "its job was cancelled, so it will not run unattended later"
        except (CommandError, RemoteError) as exc:
            log.warning("cancelling the blocked tasks %s failed: %s", tasks,
                        str(exc).splitlines()[0])
            outcome = "cancelling its job failed: cancel it with `hpctriton cancel`"
        whys = {t: f"pending for {waited:.0f} s (max_pending_s {self.max_pending_s:g}) "
                   f"because {found[t]}, which needs an administrator; {outcome}"
                for t in tasks}
        self._blocked.update(whys)
        self.record.add_event("cancel", tasks=tasks,
                              blocked={str(t): why for t, why in whys.items()})
        self.record.save()
        for why in dict.fromkeys(whys.values()):
            shown = [t for t in tasks if whys[t] == why]
            log.warning("task%s %s failed: %s", "s" if len(shown) > 1 else "",
                        ", ".join(map(str, shown)), why)

    def _watch_slice(self, slice_s: float) -> None:
        pending = [t for t in range(self.record.n_tasks)
                   if self._states.get(t, {}).get("phase") != "finished"]
        started = [t for t in pending if t in self._states]
        if not pending:
            return
        script = wait_script(self.record.remote_dir, pending, slice_s, started)
        for line in self.transport.stream_lines(script, timeout=slice_s + 60):
            if line.startswith(("@@DONE ", "@@START ")):
                _, task, text = line.split(" ", 2)
                parsed = _parse_state(text)
                if parsed is not None:
                    self._states[int(task)] = parsed
                    self._update()

    def _hint_and_update(self) -> bool:
        before = dict(self._status.tasks)
        self._hint()
        return self._update() or before != self._status.tasks

    def wait(self, timeout_s: float | None = None) -> RunStatus:
        """Block until every task is final (or ``timeout_s`` passes); return the status."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if self._reachable:
            self._states = read_states(self.transport, self.record,
                                       list(range(self.record.n_tasks)))
        self._update()
        interval = self.hint_interval_s
        last_hint: float | None = None
        word_tries = 0
        stream_failures = 0
        while True:
            now = time.monotonic()
            due = last_hint is None or now - last_hint >= interval
            if self._status.done:
                # Interrupted tasks: ask (a bounded few times) whether the scheduler calls it
                # a timeout or a cancellation; it may still be ending the job.
                if not self._needs_final_word() or word_tries >= FINAL_WORD_TRIES:
                    return self._status
                if word_tries and not due:
                    time.sleep(FINAL_WORD_GAP_S)
                word_tries += 1
                self._hint_and_update()
                last_hint = time.monotonic()
                continue
            if deadline is not None and now >= deadline:
                return self._status
            if due:
                changed = self._hint_and_update()
                last_hint = time.monotonic()
                interval = self.hint_interval_s if changed else min(
                    interval * 2, self.hint_interval_max_s)
                continue
            assert last_hint is not None
            until_hint = max(1.0, interval - (time.monotonic() - last_hint))
            remaining = (deadline - time.monotonic()) if deadline is not None else until_hint
            slice_s = max(0.5, min(self.slice_s or until_hint, until_hint, remaining))
            if not self._reachable:
                time.sleep(slice_s)
                continue
            try:
                self._watch_slice(slice_s)
                stream_failures = 0
            except (CommandError, RemoteError) as exc:
                # a dropped connection or a busy login node: reconnect and go on watching
                stream_failures += 1
                if not exc.transient or stream_failures > STREAM_RETRIES:
                    raise
                pause = min(2.0 ** stream_failures, 30.0)
                log.warning("watching the state files failed (%s); retrying in %.0f s",
                            str(exc).splitlines()[0], pause)
                time.sleep(pause)

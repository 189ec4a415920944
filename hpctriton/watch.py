"""Status and waiting: state files first, the scheduler only as a hint.

Waiting runs a small bash loop on the remote side that watches every unfinished
task's ``state.json`` with shell built-ins (no process per file) and prints a line the
moment one appears or finishes; the client reads those lines from one SSH channel. It
asks the scheduler at most once per ``hint_interval_s`` (30 s, growing while nothing
changes) to learn about jobs that never started, were cancelled or vanished.
"""

from __future__ import annotations

import json
import logging
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import templating
from .backends import Backend
from .errors import CommandError, RemoteError
from .runs import RunRecord
from .states import JobState, SchedulerInfo, TaskStatus, combine
from .transport import Transport

log = logging.getLogger("hpctriton.watch")

#: Seconds between scheduler hints: the first, and the cap it backs off to.
HINT_INTERVAL_S = 30.0
HINT_INTERVAL_MAX_S = 300.0
#: After every task has ended: how often, and how far apart, to ask why interrupted
#: tasks were interrupted (timeout or cancel) while the scheduler finishes them off.
FINAL_WORD_TRIES = 10
FINAL_WORD_GAP_S = 2.0
#: How often the remote loop looks at the state files.
POLL_S = 0.2


def _parse_state(text: str) -> dict[str, object] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None  # a file being replaced; the next look will see it whole
    return data if isinstance(data, dict) else None


def read_states(transport: Transport, record: RunRecord,
                tasks: Sequence[int]) -> dict[int, dict[str, object]]:
    """Every existing ``results/<task>/state.json`` of ``tasks``, in one remote call."""
    if not tasks:
        return {}
    script = (
        f"cd {shlex.quote(record.remote_dir)}/results 2>/dev/null || exit 0\n"
        f"for t in {' '.join(str(t) for t in tasks)}; do\n"
        '  if [ -f "$t/state.json" ]; then IFS= read -r l < "$t/state.json"; '
        'printf "@@STATE %s %s\\n" "$t" "$l"; fi\n'
        "done\n"
    )
    result = transport.run_script(script)
    states: dict[int, dict[str, object]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("@@STATE "):
            _, task, text = line.split(" ", 2)
            parsed = _parse_state(text)
            if parsed is not None:
                states[int(task)] = parsed
    return states


def wait_script(remote_dir: str, pending: Sequence[int], slice_s: float,
                started: Sequence[int] = ()) -> str:
    """The remote loop: one line per task that starts or finishes, for ``slice_s`` s."""
    return templating.render("wait_states.sh.j2", results_dir=f"{remote_dir}/results",
                             pending=list(pending), started=list(started),
                             slice_s=max(1, int(slice_s)), poll_s=POLL_S)


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
        if path.is_file():
            parsed = _parse_state(path.read_text(encoding="utf-8"))
            if parsed is not None:
                states[task] = parsed
    return states


def status(transport: Transport, backend: Backend, record: RunRecord,
           *, scheduler: bool = True) -> RunStatus:
    """State files first (one call), then one scheduler call for the tasks they leave open."""
    tasks = list(range(record.n_tasks))
    if backend.state_files_reachable:
        states = read_states(transport, record, tasks)
    else:
        states = collected_states(record)
    open_tasks = [t for t in tasks if not _final_from_state(states.get(t))]
    hints: dict[int, SchedulerInfo] = {}
    if scheduler and open_tasks:
        hints = backend.poll(transport, record, open_tasks)
    return RunStatus({t: combine(t, states.get(t), hints.get(t),
                                 state_expected=backend.state_files_reachable) for t in tasks})


def _final_from_state(state: dict[str, object] | None) -> bool:
    """A finished, uninterrupted state file needs no scheduler word."""
    return bool(state and state.get("phase") == "finished" and not state.get("interrupted"))


ProgressCallback = Callable[[RunStatus], None]


@dataclass
class Waiter:
    """Waits for a run; ``on_change`` is called whenever a task's status changes."""

    transport: Transport
    backend: Backend
    record: RunRecord
    on_change: ProgressCallback | None = None
    hint_interval_s: float = HINT_INTERVAL_S
    hint_interval_max_s: float = HINT_INTERVAL_MAX_S
    #: Unit tests shorten the remote slices; the default is the hint interval.
    slice_s: float | None = None
    scheduler_calls: int = 0
    _states: dict[int, dict[str, object]] = field(default_factory=dict)
    _hints: dict[int, SchedulerInfo] = field(default_factory=dict)
    _status: RunStatus = field(default_factory=RunStatus)

    def _update(self) -> bool:
        reachable = self.backend.state_files_reachable
        new = RunStatus({t: combine(t, self._states.get(t), self._hints.get(t),
                                    state_expected=reachable)
                         for t in range(self.record.n_tasks)})
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
            self._hints.update(self.backend.poll(self.transport, self.record, open_tasks))
        except (CommandError, RemoteError) as exc:
            log.warning("scheduler query failed (will retry later): %s", exc)

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
        if self.backend.state_files_reachable:
            self._states = read_states(self.transport, self.record,
                                       list(range(self.record.n_tasks)))
        self._update()
        interval = self.hint_interval_s
        last_hint: float | None = None
        word_tries = 0
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
            if self.backend.state_files_reachable:
                self._watch_slice(slice_s)
            else:
                time.sleep(slice_s)

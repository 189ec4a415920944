"""Recurring runs on the cluster (``hpctriton schedule``): the job chain and its records.

A schedule is a chain of jobs on the cluster itself, not a cron on a laptop: each link
submits the next with ``sbatch --begin=now+INTERVAL`` *before* it runs its checks (so a
check that fails never breaks the chain), then runs the bundle as a run of its own.
Schedulers declare the chain with ``capabilities.job_chain`` (Slurm does); the others
are refused with what works instead.

Where things are:

* on the cluster, ``<workdir>/schedules/<name>/``: ``chain.sh`` (one link), ``bundle/``
  (rendered once), ``runs/<name>-NNNN/`` (each link's run folder, results inside),
  ``members.tsv`` (what happened, one line per event, appended by the links) and
  ``STOP`` (written by ``hpctriton schedule stop``; the next link reads it and ends);
* here, ``<runs_dir>/schedules/<name>/``: ``schedule.json``, ``config.yaml`` (as
  submitted), the staged tree and ``members.tsv`` as last read; each link that started
  becomes an ordinary run folder ``<runs_dir>/<name>-NNNN`` (``hpctriton report`` and
  ``compare`` take it), noted in the run index;
* every schedule of this user is listed in ``schedules.json`` in the XDG state folder,
  beside the run index (:mod:`hpctriton.runs.index`), with the same care (a lock, atomic
  writes, never a reason for a command to fail).

``members.tsv`` lines: ``event link run-id job-id time code``, tab-separated; events are
``submitted`` (time: when the link is due), ``started``, ``ended`` (code: the worst exit
code of its tasks), ``stopped`` (the link found STOP), ``final`` (the last link by count
or end time) and ``submit-failed`` (code: sbatch's answer).

Example::

    >>> sched = start_schedule(load_config("hpctriton.yaml"), "asgc-slurm", every="30m",
    ...                        count=48)
    >>> sched.name
    'asgc-slurm-3f2a'
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from hpctriton.config import Config
from hpctriton.errors import RunNotFound, UsageError
from hpctriton.render.bundle import render_bundle
from hpctriton.runs import index
from hpctriton.runs.record import (
    RunRecord,
    atomic_write,
    by_name,
    make_run_folder,
    now_iso,
    runs_root,
    save_config,
)
from hpctriton.runs.stage import stage_bundle
from hpctriton.schedulers import ChainSpec, JobRef, RenderContext, get_scheduler
from hpctriton.shell import templates as templating
from hpctriton.transport import Transport, open_transport

log = logging.getLogger("hpctriton.runs.schedules")

SCHEDULES_NAME = "schedules.json"
SCHEDULES_LOCK = "schedules.lock"
SCHEDULE_JSON = "schedule.json"
MEMBERS = "members.tsv"
#: A due link that has not started this long after its due time is missing (at least
#: this, or one interval when that is longer).
MISSING_GRACE_S = 60
#: At most this many missing links are listed after a chain broke.
MAX_GAPS = 500
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*", re.IGNORECASE)
_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, what: str = "--every") -> int:
    """Seconds of ``20s``, ``30m``, ``1h``, ``2d`` (a bare number is seconds).

    Example::

        >>> parse_duration("30m")
        1800
    """
    match = _DURATION.fullmatch(text or "")
    if not match:
        raise UsageError(f"{what} {text!r} is not a duration: write it as 20s, 30m, 1h or 2d")
    seconds = float(match[1]) * _UNITS[(match[2] or "s").lower()]
    if seconds < 1:
        raise UsageError(f"{what} {text!r} is not a duration of a second or more")
    return int(round(seconds))


def parse_until(text: str, now: float | None = None) -> int:
    """An end time as epoch seconds: an ISO 8601 time (``2026-12-01T18:00``, local time
    when it names no zone) or a duration from now (``6h``)."""
    now = time.time() if now is None else now
    try:
        return int(now) + parse_duration(text, "--until")
    except UsageError:
        pass
    try:
        moment = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--until {text!r} is neither a time (2026-12-01T18:00) nor a "
                         "duration from now (6h)") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    if moment.timestamp() <= now:
        raise UsageError(f"--until {text!r} is in the past")
    return int(moment.timestamp())


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(f"schedule name {name!r} may use only letters, digits, '.', '_' "
                         "and '-' (at most 64 characters, starting with a letter or digit)")
    return name


def member_run_id(name: str, seq: int) -> str:
    """The run id of link ``seq``: ``<name>-0001``."""
    return f"{name}-{seq:04d}"


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------- the record


@dataclass
class Schedule:
    """One schedule: what runs where, how often, until when (``schedule.json``)."""

    name: str
    backend: str
    cluster: str | None
    host: str
    #: The schedule's folder on the cluster.
    remote_dir: str
    interval_s: int
    count: int = 0
    until_epoch: int = 0
    n_tasks: int = 1
    points: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = field(default_factory=now_iso)
    first_job: str | None = None
    #: The baseline history and collect judge regressions against (``baseline set``).
    baseline: str | None = None
    #: Local folder of this record (not stored).
    path: Path = field(default=Path("."), compare=False)

    @property
    def runs_dir(self) -> Path:
        """Where its links' run folders go: the runs_dir it was made in."""
        return self.path.parent.parent

    def save(self) -> None:
        data = {k: v for k, v in asdict(self).items() if k != "path"}
        make_run_folder(self.path)
        atomic_write(self.path / SCHEDULE_JSON, json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Schedule:
        path = folder / SCHEDULE_JSON
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            schedule = cls(**known)
        except FileNotFoundError:
            raise RunNotFound(f"{folder} holds no schedule ({SCHEDULE_JSON})") from None
        except (OSError, ValueError, TypeError) as exc:
            raise RunNotFound(f"{path} is damaged: {exc}") from None
        schedule.path = folder
        return schedule

    def config_record(self) -> RunRecord:
        """A run record standing for the schedule itself (its config, cluster, folder)."""
        record = RunRecord(run_id=self.name, backend=self.backend, cluster=self.cluster,
                           host=self.host, remote_dir=self.remote_dir, n_tasks=self.n_tasks,
                           points=self.points or [{}] * self.n_tasks, path=self.path)
        return record

    def transport(self) -> Transport:
        return open_transport(self.config_record().cluster_config())

    def to_json(self) -> dict[str, Any]:
        return {**{k: v for k, v in asdict(self).items() if k != "path"},
                "path": str(self.path)}


# ------------------------------------------------------- this user's schedules


def _read_known(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / SCHEDULES_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", folder / SCHEDULES_NAME, exc)
        return {}
    items = data.get("schedules") if isinstance(data, dict) else None
    return {str(i["name"]): str(i["path"]) for i in items or []
            if isinstance(i, dict) and isinstance(i.get("name"), str)
            and isinstance(i.get("path"), str)}


def _remember(schedule: Schedule) -> None:
    folder = index.state_dir()
    try:
        folder.mkdir(mode=index.STATE_DIR_MODE, parents=True, exist_ok=True)
        with index.locked(folder, SCHEDULES_LOCK):
            known = _read_known(folder)
            known[schedule.name] = str(schedule.path.absolute())
            text = json.dumps({"schema_version": 1, "schedules": [
                {"name": n, "path": p} for n, p in sorted(known.items())]}, indent=1)
            atomic_write(folder / SCHEDULES_NAME, text + "\n", mode=index.INDEX_FILE_MODE)
    except Exception as exc:  # noqa: BLE001 - the list is a convenience, as the run index
        log.warning("could not note schedule %s in %s: %s", schedule.name, folder, exc)


def all_schedules() -> list[Schedule]:
    """Every schedule this user made (whose folder still exists), oldest first."""
    found = []
    for name, path in _read_known(index.state_dir()).items():
        try:
            found.append(Schedule.load(Path(path)))
        except RunNotFound as exc:
            log.warning("schedule %s: %s", name, exc)
    return sorted(found, key=lambda s: (s.created_at, s.name))


def find_schedule(ref: str | None) -> Schedule:
    """A schedule by name, unique name prefix or folder; the newest when ``ref`` is None."""
    if ref is not None and (Path(ref) / SCHEDULE_JSON).is_file():
        return Schedule.load(Path(ref))
    schedules = all_schedules()
    if not schedules:
        raise RunNotFound("no schedules yet: `hpctriton schedule --cluster X --every 30m` "
                          "makes one")
    if ref is None:
        return schedules[-1]
    return by_name(ref, schedules, lambda s: s.name, "schedules",
                   f"no schedule {ref!r}; `hpctriton schedule list` lists them")


# ------------------------------------------------------------------- starting


@dataclass(frozen=True)
class SchedulePlan:
    """What :func:`start_schedule` would do (``schedule --dry-run``)."""

    name: str
    backend: str
    cluster: str | None
    host: str
    remote_dir: str
    interval_s: int
    count: int
    until_epoch: int
    n_tasks: int
    local_dir: Path
    chain_script: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "cluster": self.cluster,
                "host": self.host, "remote_dir": self.remote_dir,
                "interval_s": self.interval_s, "count": self.count,
                "until": _iso(self.until_epoch) if self.until_epoch else None,
                "tasks": self.n_tasks, "local_dir": str(self.local_dir),
                "first_run": member_run_id(self.name, 1)}


def _refuse_without_chain(backend: str) -> None:
    if get_scheduler(backend).capabilities.job_chain:
        return
    raise UsageError(
        f"hpctriton schedule needs a scheduler with delayed job starts; the {backend} "
        "backend has none. What works: a Slurm cluster (a job chain: each job submits "
        "the next with sbatch --begin); for DiCOS or this machine, run `hpctriton submit "
        "--wait` from cron or a CI pipeline, then `hpctriton history -c CONFIG` shows "
        "every run of that config")


def make_name(config: Config, cluster: str | None, backend: str) -> str:
    base = re.sub(r"[^A-Za-z0-9]+", "-", config.name or cluster or backend).strip("-").lower()
    return f"{base[:40] or 'schedule'}-{secrets.token_hex(2)}"


def _context(config: Config, cluster_name: str | None, cluster_cfg: Any,
             name: str, n_tasks: int) -> RenderContext:
    from hpctriton.config import load_tasks

    scheduler = get_scheduler(cluster_cfg.backend)
    return RenderContext(cluster_name=cluster_name, cluster=cluster_cfg, run_id=name,
                         n_tasks=n_tasks,
                         load_ranks=load_tasks(config)
                         if scheduler.capabilities.multi_task_load else 1)


def plan_schedule(config: Config, cluster: str | None, *, every: str, count: int = 0,
                  until: str | None = None, name: str | None = None,
                  runs_dir: str | Path | None = None,
                  backend: str | None = None) -> SchedulePlan:
    """What :func:`start_schedule` would do; nothing is written or submitted."""
    cluster_name, cluster_cfg = config.target(cluster, backend)
    _refuse_without_chain(cluster_cfg.backend)
    interval = parse_duration(every)
    until_epoch = parse_until(until) if until else 0
    if count < 0:
        raise UsageError("--count must be 1 or more")
    name = check_name(name or make_name(config, cluster_name, cluster_cfg.backend))
    scheduler = get_scheduler(cluster_cfg.backend)
    n_tasks = len(config.points())
    workdir = cluster_cfg.workdir.rstrip("/") or "."
    remote = str(PurePosixPath(workdir) / "schedules" / name)
    chain = ChainSpec(name, remote, interval, count, until_epoch, n_tasks)
    script = scheduler.chain_script(_context(config, cluster_name, cluster_cfg, name,
                                             n_tasks), chain)
    with open_transport(cluster_cfg) as transport:
        label = transport.label
    return SchedulePlan(name, cluster_cfg.backend, cluster_name, label, remote, interval,
                        count, until_epoch, n_tasks,
                        runs_root(runs_dir, config) / "schedules" / name, script)


def start_schedule(config: Config, cluster: str | None, *, every: str, count: int = 0,
                   until: str | None = None, name: str | None = None,
                   runs_dir: str | Path | None = None,
                   backend: str | None = None) -> Schedule:
    """Render the bundle once, stage it with ``chain.sh`` in the schedule's folder on
    the cluster and submit the first link (to start now)."""
    cluster_name, cluster_cfg = config.target(cluster, backend)
    _refuse_without_chain(cluster_cfg.backend)
    interval = parse_duration(every)
    until_epoch = parse_until(until) if until else 0
    if count < 0:
        raise UsageError("--count must be 1 or more")
    name = check_name(name or make_name(config, cluster_name, cluster_cfg.backend))
    known = _read_known(index.state_dir())
    local = runs_root(runs_dir, config) / "schedules" / name
    if name in known or local.exists():
        raise UsageError(f"a schedule named {name!r} exists already: choose another --name")
    scheduler = get_scheduler(cluster_cfg.backend)
    transport = open_transport(cluster_cfg)
    try:
        make_run_folder(local)
        stage = local / "stage"
        bundle = render_bundle(config, stage / "bundle", cluster=cluster_name,
                               backend=cluster_cfg.backend, run_id=name)
        workdir = transport.resolve(cluster_cfg.workdir)
        remote = str(PurePosixPath(workdir) / "schedules" / name)
        scheduler.check_remote_dir(remote, f"clusters.{cluster_name}.workdir"
                                   if cluster_name else "workdir")
        chain = ChainSpec(name, remote, interval, count, until_epoch, bundle.n_tasks)
        ctx = _context(config, cluster_name, cluster_cfg, name, bundle.n_tasks)
        (stage / "chain.sh").write_text(scheduler.chain_script(ctx, chain), encoding="utf-8")
        (stage / "chain.sh").chmod(0o600)
        schedule = Schedule(name=name, backend=cluster_cfg.backend, cluster=cluster_name,
                            host=transport.label, remote_dir=remote, interval_s=interval,
                            count=count, until_epoch=until_epoch, n_tasks=bundle.n_tasks,
                            points=bundle.points, path=local)
        save_config(schedule.config_record(), config)
        schedule.save()
        stage_bundle(transport, stage, remote)
        schedule.first_job = scheduler.start_chain(transport, chain)
        schedule.save()
        _remember(schedule)
        return schedule
    finally:
        transport.close()


def stop_schedule(schedule: Schedule, transport: Transport | None = None) -> None:
    """Write the schedule's STOP file: the next link finds it and ends the chain (it
    runs no checks and submits nothing)."""
    script = templating.render("hpctriton.runs:schedule_stop.sh.j2",
                               schedule_dir=schedule.remote_dir)
    own = transport is None
    transport = transport or schedule.transport()
    try:
        transport.run_script(script).check(f"stopping schedule {schedule.name}")
    finally:
        if own:
            transport.close()
    with_events = schedule.path / "stopped"
    with_events.write_text(now_iso() + "\n", encoding="utf-8")


# --------------------------------------------------------------------- members


@dataclass
class Member:
    """One link of a chain as ``members.tsv`` tells it (times are epoch seconds)."""

    seq: int
    run_id: str
    job_id: str | None = None
    due_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    stopped: bool = False
    final: bool = False
    submit_error: str | None = None
    #: Due and never started (the chain broke, or the job vanished before it started).
    missing: bool = False

    @property
    def state(self) -> str:
        """``pending``, ``running``, ``ended``, ``stopped`` or ``missing``."""
        if self.missing:
            return "missing"
        if self.stopped:
            return "stopped"
        if self.ended_at is not None:
            return "ended"
        if self.started_at is not None:
            return "running"
        return "pending"

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "run_id": self.run_id, "job_id": self.job_id,
                "due_at": _iso(self.due_at), "started_at": _iso(self.started_at),
                "ended_at": _iso(self.ended_at), "exit_code": self.exit_code,
                "state": self.state, "submit_error": self.submit_error}


@dataclass
class Members:
    """Every link of a chain, and how the chain stands."""

    links: list[Member]
    stop_file: bool
    #: The chain ended by itself (count or end time), or a link found STOP.
    ended: bool

    def next_due(self) -> float | None:
        """When the next link is due (None: the chain has ended, or nothing is pending)."""
        pending = [m.due_at for m in self.links if m.state == "pending" and m.due_at]
        return min(pending) if pending else None

    @property
    def ran(self) -> list[Member]:
        return [m for m in self.links if m.started_at is not None and not m.stopped]


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def parse_members(text: str, schedule: Schedule, *, stop_file: bool = False,
                  now: float | None = None) -> Members:
    """``members.tsv`` as links, with the due links that never started marked missing.

    A link is missing when it was due more than ``max(MISSING_GRACE_S, interval)`` ago
    and never started, or, after a chain broke (a submit failed, a link vanished), for
    every interval since then that the schedule still covered (count, end time, now).

    Example::

        >>> parse_members("submitted\\t1\\ts-0001\\t42\\t1700000000\\t-\\n", sched).links[0].job_id
        '42'
    """
    now = time.time() if now is None else now
    links: dict[int, Member] = {}
    ended = False
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 6 or not parts[1].isdigit():
            continue
        event, seq_text, run_id, job, at, code = parts[:6]
        member = links.setdefault(int(seq_text), Member(int(seq_text), run_id))
        when = _num(at)
        job_id = job if job not in ("", "-") else None
        if event == "submitted":
            member.job_id, member.due_at = job_id or member.job_id, when
        elif event == "started":
            member.started_at = when
            member.job_id = job_id or member.job_id
        elif event == "ended":
            member.ended_at = when
            member.exit_code = int(code) if code.lstrip("-").isdigit() else None
        elif event == "stopped":
            member.stopped, ended = True, True
        elif event == "final":
            member.final, ended = True, True
        elif event == "submit-failed":
            member.due_at, member.submit_error = when, code
    grace = max(MISSING_GRACE_S, schedule.interval_s)
    for member in links.values():
        if (member.started_at is None and not member.stopped and member.due_at is not None
                and member.due_at + grace < now):
            member.missing = True
    if links and not ended:
        last = links[max(links)]
        broken = last.missing or last.submit_error is not None
        if broken and last.due_at is not None:
            seq, due = last.seq + 1, last.due_at + schedule.interval_s
            while (due + grace < now and len(links) < MAX_GAPS
                   and (not schedule.count or seq <= schedule.count)
                   and (not schedule.until_epoch or due <= schedule.until_epoch)):
                links[seq] = Member(seq, member_run_id(schedule.name, seq), due_at=due,
                                    missing=True)
                seq, due = seq + 1, due + schedule.interval_s
    return Members([links[k] for k in sorted(links)], stop_file, ended)


def read_members(schedule: Schedule, transport: Transport, *,
                 now: float | None = None) -> Members:
    """Read ``members.tsv`` and the STOP file on the cluster (one remote call); the
    text is kept in the schedule's local folder for commands that do not connect."""
    script = templating.render("hpctriton.runs:schedule_read.sh.j2",
                               schedule_dir=schedule.remote_dir, members=MEMBERS)
    out = transport.run_script(script).check(f"reading schedule {schedule.name}").stdout
    stop = "@@STOP" in out.splitlines()
    text = "\n".join(line for line in out.splitlines() if not line.startswith("@@")) + "\n"
    atomic_write(schedule.path / MEMBERS, text)
    (schedule.path / "stop-file").write_text("yes\n" if stop else "no\n", encoding="utf-8")
    return parse_members(text, schedule, stop_file=stop, now=now)


def local_members(schedule: Schedule, *, now: float | None = None) -> Members:
    """The links as last read from the cluster (:func:`read_members`)."""
    try:
        text = (schedule.path / MEMBERS).read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        stop = (schedule.path / "stop-file").read_text(encoding="utf-8").strip() == "yes"
    except FileNotFoundError:
        stop = False
    return parse_members(text, schedule, stop_file=stop, now=now)


def member_record(schedule: Schedule, member: Member) -> RunRecord:
    """The local run folder of a link that started (made, and noted in the run index,
    the first time)."""
    folder = schedule.runs_dir / member.run_id
    if (folder / "run.json").is_file():
        record = RunRecord.load(folder)
        if member.ended_at is not None and not any(
                e.get("event") == "ended" for e in record.events):
            record.add_event("ended", exit_code=member.exit_code, at_epoch=member.ended_at)
            record.save()
        return record
    created = _iso(member.started_at) or now_iso()
    jobs = [JobRef(job_id=member.job_id, tasks=list(range(schedule.n_tasks)), offset=0,
                   extra={"array": False, "schedule": schedule.name})] if member.job_id else []
    record = RunRecord(run_id=member.run_id, backend=schedule.backend,
                       cluster=schedule.cluster, host=schedule.host,
                       remote_dir=f"{schedule.remote_dir}/runs/{member.run_id}",
                       n_tasks=schedule.n_tasks,
                       points=schedule.points or [{}] * schedule.n_tasks,
                       created_at=created, submitted_at=_iso(member.due_at), jobs=jobs,
                       path=folder)
    record.add_event("scheduled", schedule=schedule.name, seq=member.seq,
                     due_at=_iso(member.due_at))
    if member.ended_at is not None:
        record.add_event("ended", exit_code=member.exit_code, at_epoch=member.ended_at)
    make_run_folder(folder)
    config_text = (schedule.path / "config.yaml").read_text(encoding="utf-8")
    atomic_write(folder / "config.yaml", config_text)
    record.save()
    index.remember(record)
    return record


def schedule_of(record: RunRecord) -> str | None:
    """The schedule a run folder is a link of (None: a run of its own)."""
    for event in record.events:
        if event.get("event") == "scheduled":
            return str(event.get("schedule"))
    return None


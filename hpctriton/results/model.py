"""Collected results: every task's ``results.json``, read back as one object.

This is the data model only: ``to_dataframe()`` gives a pandas table (the
``hpctriton[pandas]`` extra, imported when asked for). The notebook views
(``_repr_html_``, ``plot()``) belong to the reports: the public ``hpctriton.Results``
is :class:`hpctriton.report.notebook.Results`, a subclass that adds them, so that
results never import reports.

The documents are read as the probe writes them (``hpctriton_probe.schema``).

Example::

    >>> from hpctriton import open_run
    >>> res = open_run().results()
    >>> res.ok, len(res.checks)
    (True, 14)
    >>> [c.message for c in res["infer"]]
    ['2 output(s) ok in 1.9 ms', '2 output(s) ok in 1.2 ms']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from hpctriton.results.load import LoadPoint, load_points
from hpctriton.runs.merge import MERGED_JSON
from hpctriton.runs.states import exit_meaning

if TYPE_CHECKING:
    from pandas import DataFrame

    from hpctriton_probe.schema import ResultEntry, ResultsDocument, RunInfo, StateFile

STATUSES = ("pass", "fail", "error", "skip")
#: How bad a status is, for "the worst of": error > fail > skip > pass (unknown: error).
STATUS_RANK = {"pass": 0, "skip": 1, "fail": 2, "error": 3}

#: ``Results`` or a subclass of it (the notebook's): what the ``from_*`` readers build.
ResultsT = TypeVar("ResultsT", bound="Results")

#: Columns of :meth:`Results.to_dataframe`, before the sweep-point columns.
DATAFRAME_COLUMNS = ("run_id", "task", "check", "protocol", "model", "status", "ok",
                     "duration_s", "message", "details")

#: Columns of :meth:`Results.load_dataframe`, before the sweep-point columns.
LOAD_DATAFRAME_COLUMNS = ("run_id", "task", "model", "protocol", "mode", "load",
                          "throughput_rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms",
                          "errors", "requests", "stable")

PANDAS_HINT = "pip install 'hpctriton[pandas]'"


def _require_pandas(what: str) -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(f"{what} needs pandas, an optional extra: {PANDAS_HINT}") from exc
    return pandas


def worst_status(statuses: Iterable[str]) -> str | None:
    """The worst of some statuses, the first of equals (None for none).

    Example::

        >>> worst_status(["pass", "fail", "skip"])
        'fail'
    """
    found = list(statuses)
    return max(found, key=lambda s: STATUS_RANK.get(s, 3)) if found else None


def point_label(point: dict[str, Any] | None) -> str:
    """A sweep point as ``server.host=gpu01, models=[simple]`` ("" for no sweep).

    Example::

        >>> point_label({"server.host": "gpu01", "models": ["simple"]})
        'server.host=gpu01, models=[simple]'
    """
    def text(value: Any) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(text(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{k}: {text(v)}" for k, v in value.items()) + "}"
        return str(value)

    return ", ".join(f"{k}={text(v)}" for k, v in (point or {}).items())


@dataclass(frozen=True)
class CheckResult:
    """One line of a task's results: a check, on one protocol, for one model."""

    task: int
    check: str
    protocol: str | None
    model: str | None
    status: str
    duration_s: float
    message: str
    details: dict[str, Any]

    @classmethod
    def from_entry(cls, task: int, entry: ResultEntry) -> CheckResult:
        """One entry of a task's ``results.json``."""
        return cls(task=task, check=entry["check"], protocol=entry["protocol"],
                   model=entry["model"], status=entry["status"],
                   duration_s=float(entry["duration_s"]), message=entry["message"],
                   details=entry["details"])

    @property
    def ok(self) -> bool:
        """Passed or skipped."""
        return self.status in ("pass", "skip")

    @property
    def name(self) -> str:
        """``check[protocol] model``, as JUnit and the tables name it."""
        text = f"{self.check}[{self.protocol or '-'}]"
        return f"{text} {self.model}" if self.model else text

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "check": self.check, "protocol": self.protocol,
                "model": self.model, "status": self.status, "duration_s": self.duration_s,
                "message": self.message, "details": self.details}


def _with_merged_load(data: ResultsDocument, merged_path: Path) -> ResultsDocument:
    """Load from several Slurm tasks: rank 0's ``results.json`` holds only its own share
    of each point; ``collect`` merged every rank into ``load-merged.json``, whose entries
    replace those per-rank ones (the setup entry, with no model, stays)."""
    if not merged_path.is_file() or not data:
        return data
    merged, problem = _read_json(merged_path)
    if problem is not None or not isinstance(merged, dict):
        return data
    entries, bad = _valid_entries(merged.get("entries"))
    ranks = merged.get("ranks")
    if not isinstance(ranks, int) or ranks <= 1 or not entries or bad:
        return data
    kept = [c for c in data["checks"] if not (c["check"] == "load" and c["model"] is not None)]
    # a capacity search's answers were decided in the job over every rank: kept as they are
    capacity = [c for c in data["checks"] if c["check"] == "load" and c["model"] is not None
                and "capacity" in c["details"]]
    return {**data, "checks": kept + entries + capacity}


@dataclass
class TaskResults:
    """One task's ``results.json`` (and ``state.json`` when collected).

    ``data`` is empty for a task that left a ``state.json`` but no ``results.json``
    (the job died before the probe started: wrong interpreter, no container).
    """

    task: int
    data: ResultsDocument
    state: StateFile | None = None
    #: The task's sweep point (run.json ``points``; else the probe's ``run.point``).
    point: dict[str, Any] | None = None
    #: What was wrong with its files (an empty or damaged ``results.json``/``state.json``).
    read_problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.point is None:
            found = self.run_info.get("point")
            self.point = dict(found) if isinstance(found, dict) else {}

    @property
    def run_info(self) -> RunInfo:
        """``results.json``'s ``run`` (empty without a ``results.json``)."""
        return self.data.get("run", cast("RunInfo", {}))

    @property
    def checks(self) -> list[CheckResult]:
        return [CheckResult.from_entry(self.task, entry) for entry in self.data.get("checks", [])]

    @property
    def has_results(self) -> bool:
        """False when the task left no ``results.json``."""
        return bool(self.data)

    @property
    def interrupted(self) -> bool:
        return bool(self.run_info.get("interrupted")
                    or (self.state is not None and self.state.get("interrupted")))

    @property
    def hostname(self) -> str | None:
        """The node the task ran on: the probe's word, else job.sh's (None: unknown)."""
        return self.run_info.get("hostname") or (
            self.state.get("host") if self.state is not None else None) or None

    @property
    def job_id(self) -> str | None:
        """The scheduler's job id: the probe's word, else job.sh's (None: unknown)."""
        return self.run_info.get("job_id") or (
            self.state.get("job_id") if self.state is not None else None) or None

    @property
    def started_at(self) -> str | None:
        """When the probe started, else when the job did (ISO 8601; None: unknown)."""
        return self.run_info.get("started_at") or (
            self.state.get("started_at") if self.state is not None else None) or None

    @property
    def exit_code(self) -> int | None:
        """The job's exit code from ``state.json`` (None when not collected or running)."""
        code = self.state.get("exit_code") if self.state is not None else None
        return code if isinstance(code, int) else None

    @property
    def point_label(self) -> str:
        return point_label(self.point)

    @property
    def never_ran(self) -> list[str]:
        """Checks the task planned (``run.checks_planned``) that left no entry at all."""
        planned = self.run_info.get("checks_planned") or []
        ran = {c["check"] for c in self.data.get("checks", [])}
        return [c for c in planned if isinstance(c, str) and c not in ran]

    @property
    def problems(self) -> list[str]:
        """Why the task's results cannot be taken at their word, beyond its checks: damaged
        files, a job that crashed (exit code, signal), an interruption, checks that never
        ran. Empty for a task that ended normally.

        Example::

            >>> res.task(0).problems
            ['the job crashed: exit code 137 (killed by signal 9, SIGKILL)',
             'checks that never ran: metadata, load']
        """
        found = list(self.read_problems)
        code = self.exit_code
        if code is not None and code not in (0, 1):
            what = exit_meaning(code)
            crashed = what is None or what.startswith("killed") or code == 70
            found.append(("the job crashed: " if crashed else "the job failed: ")
                         + f"exit code {code}" + (f" ({what})" if what else ""))
        if self.state is not None and self.state.get("phase") == "running":
            found.append("the job never wrote its final state (killed, or its node failed?)")
        if self.interrupted:
            by = self.run_info.get("interrupted_by")
            found.append("interrupted" + (f" by {by}" if by else ""))
        if self.has_results and self.never_ran:
            found.append("checks that never ran: " + ", ".join(self.never_ran))
        if not self.has_results and self.state is not None and not self.read_problems:
            found.append("no results.json: the job ended"
                         + (f" (exit code {code})" if code is not None else "")
                         + " before the probe wrote one")
        return found

    @property
    def ok(self) -> bool:
        """Checks ran, none failed or errored, the probe was not interrupted, every planned
        check ran, the files were whole, and the job (when its ``state.json`` says) ended
        with 0."""
        return (bool(self.checks) and all(c.ok for c in self.checks)
                and not self.interrupted and self.exit_code in (0, None)
                and not self.problems)


@dataclass
class Results:
    """All tasks of a run (or one ``hpctriton check``).

    Iterating gives every :class:`CheckResult`; ``res["infer"]`` the results of one
    check, ``res[0]`` the first result.
    """

    tasks: list[TaskResults] = field(default_factory=list)
    run_id: str = ""
    #: How many tasks the run has (run.json); tasks without results then count as
    #: missing and make ``ok`` false. None: unknown, only the tasks present count.
    expected_tasks: int | None = None

    @classmethod
    def from_dir(cls: type[ResultsT], results_dir: Path, run_id: str = "", *,
                 points: list[dict[str, Any]] | None = None,
                 expected_tasks: int | None = None) -> ResultsT:
        """Read ``results/<task>/results.json`` for every task folder present.

        ``points`` (run.json's) give each task its sweep point; ``expected_tasks`` makes
        absent tasks count as missing.

        Example::

            >>> Results.from_dir(Path("hpctriton-runs/20261121-2240-x/results")).counts()
            {'pass': 14, 'fail': 0, 'error': 0, 'skip': 1}
        """
        tasks = []
        if results_dir.is_dir():
            for folder in sorted((p for p in results_dir.iterdir() if p.name.isdigit()),
                                 key=lambda p: int(p.name)):
                path = folder / "results.json"
                state_path = folder / "state.json"
                if not path.is_file() and not state_path.is_file():
                    continue
                problems: list[str] = []
                data = cast("ResultsDocument", {})
                if path.is_file():
                    data, problem = read_results_document(path)
                    problems += [problem] if problem else []
                data = _with_merged_load(data, folder / MERGED_JSON)
                state: StateFile | None = None
                if state_path.is_file():
                    state, problem = read_state_file(state_path)
                    problems += [problem] if problem else []
                task = int(folder.name)
                point = points[task] if points is not None and task < len(points) else None
                tasks.append(TaskResults(task, data, state, point, problems))
        return cls(tasks, run_id, expected_tasks)

    @classmethod
    def from_run_dir(cls: type[ResultsT], run_dir: str | Path) -> ResultsT:
        """The results of a run folder (``<runs_dir>/<run-id>``), with run.json's sweep
        points and task count.

        Example::

            >>> Results.from_run_dir("hpctriton-runs/20261121-224033-asgc-slurm-1a2b").ok
            True
        """
        from hpctriton.runs.record import RunRecord

        folder = Path(run_dir)
        record = RunRecord.load(folder)  # checked: a damaged run.json names its field
        return cls.from_dir(folder / "results", record.run_id, points=record.points,
                            expected_tasks=record.n_tasks)

    @classmethod
    def from_data(cls: type[ResultsT], data: ResultsDocument, task: int = 0) -> ResultsT:
        """Wrap one results document (``hpctriton check``).

        Example::

            >>> Results.from_data(json.load(open("results/0/results.json"))).ok
            True
        """
        run = data.get("run") if isinstance(data, dict) else None
        run_id = run.get("run_id") if isinstance(run, dict) else None
        return cls([TaskResults(task, data)], run_id if isinstance(run_id, str) else "")

    # ------------------------------------------------------------ access

    @property
    def checks(self) -> list[CheckResult]:
        return [c for t in self.tasks for c in t.checks]

    @property
    def ok(self) -> bool:
        """True when there are results, no check failed or errored (skips allowed), no
        task was interrupted and no expected task is missing.

        Example::

            >>> run.results().ok
            True
        """
        return bool(self.tasks) and all(t.ok for t in self.tasks) and not self.missing_tasks

    @property
    def verdict(self) -> str:
        """``"OK"``, ``"FAILED"``, or ``"NO RESULTS"`` when no task left any.

        Example::

            >>> run.results().verdict
            'OK'
        """
        if not self.tasks:
            return "NO RESULTS"
        return "OK" if self.ok else "FAILED"

    @property
    def missing_tasks(self) -> list[int]:
        """Tasks of the run with no results at all (never ran, or not collected)."""
        if self.expected_tasks is None:
            return []
        present = {t.task for t in self.tasks}
        return [t for t in range(self.expected_tasks) if t not in present]

    @property
    def failures(self) -> list[CheckResult]:
        """Every result that failed or errored.

        Example::

            >>> [f.name for f in res.failures]
            ['infer[grpc] failing']
        """
        return [c for c in self.checks if not c.ok]

    @property
    def check_names(self) -> list[str]:
        """The checks present, in the order they first ran."""
        return list(dict.fromkeys(c.check for c in self.checks))

    @property
    def models(self) -> list[str]:
        """The models named by results, in the order they first appear."""
        return list(dict.fromkeys(c.model for c in self.checks if c.model))

    def counts(self) -> dict[str, int]:
        """Results per status: ``{'pass': 12, 'fail': 1, 'error': 0, 'skip': 1}``."""
        out = dict.fromkeys(STATUSES, 0)
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def by_check(self, name: str) -> list[CheckResult]:
        """Every result of one check (``res.by_check("infer")``)."""
        return [c for c in self.checks if c.check == name]

    def task(self, number: int) -> TaskResults:
        """One task's results by task number (KeyError when it has none)."""
        for t in self.tasks:
            if t.task == number:
                return t
        raise KeyError(f"no results for task {number}")

    @overload
    def __getitem__(self, key: str) -> list[CheckResult]: ...

    @overload
    def __getitem__(self, key: int) -> CheckResult: ...

    def __getitem__(self, key: str | int) -> list[CheckResult] | CheckResult:
        """``res["infer"]``: the results of a check (KeyError when it did not run);
        ``res[0]``: one result, in run order."""
        if isinstance(key, str):
            found = self.by_check(key)
            if not found:
                raise KeyError(f"no {key!r} results; present: {', '.join(self.check_names)}")
            return found
        return self.checks[key]

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items() if n)
        return (f"Results({self.run_id!r}, tasks={len(self.tasks)}, ok={self.ok}"
                + (f", {counts}" if counts else "") + ")")

    def load_points(self) -> list[LoadPoint]:
        """The load check's figures, one :class:`~hpctriton.results.load.LoadPoint` per
        model and load level.

        Example::

            >>> [(p.load, p.latency("p99")) for p in res.load_points()]
            [(1.0, 2.1), (2.0, 2.6), (4.0, 4.4)]
        """
        return load_points(self)

    # --------------------------------------------------------- exports

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "ok": self.ok, "counts": self.counts(),
                "missing_tasks": self.missing_tasks,
                "tasks": [{"task": t.task, "ok": t.ok, "state": t.state, "point": t.point,
                           **t.data} for t in self.tasks]}

    def _point_columns(self) -> list[str]:
        return list(dict.fromkeys(k for t in self.tasks for k in (t.point or {})))

    def to_dataframe(self) -> DataFrame:
        """One row per result: ``DATAFRAME_COLUMNS``, then one column per sweep key
        (lists and maps as JSON text, so that ``groupby`` works on them).

        Needs pandas: ``pip install 'hpctriton[pandas]'``.

        Example::

            >>> df = res.to_dataframe()
            >>> df.groupby(["check", "status"]).size()
        """
        pandas = _require_pandas("Results.to_dataframe()")
        keys = self._point_columns()
        rows = []
        for t in self.tasks:
            extra = {k: _cell((t.point or {}).get(k)) for k in keys}
            for c in t.checks:
                rows.append({"run_id": self.run_id, "task": c.task, "check": c.check,
                             "protocol": c.protocol, "model": c.model, "status": c.status,
                             "ok": c.ok, "duration_s": c.duration_s, "message": c.message,
                             "details": c.details, **extra})
        return pandas.DataFrame(rows, columns=[*DATAFRAME_COLUMNS, *keys])

    def load_dataframe(self) -> DataFrame:
        """One row per load point: ``LOAD_DATAFRAME_COLUMNS`` and the sweep keys.

        Needs pandas: ``pip install 'hpctriton[pandas]'``.

        Example::

            >>> res.load_dataframe().pivot(index="load", columns="model", values="p99_ms")
        """
        pandas = _require_pandas("Results.load_dataframe()")
        keys = self._point_columns()
        points = {t.task: t.point or {} for t in self.tasks}
        rows = []
        for p in self.load_points():
            rows.append({"run_id": self.run_id, "task": p.task, "model": p.model,
                         "protocol": p.protocol, "mode": p.mode, "load": p.load,
                         "throughput_rps": p.throughput_rps,
                         **{f"{n}_ms": p.latency(n) for n in ("p50", "p90", "p95", "p99",
                                                              "max")},
                         "errors": p.errors, "requests": p.requests, "stable": p.stable,
                         **{k: _cell(points.get(p.task, {}).get(k)) for k in keys}})
        return pandas.DataFrame(rows, columns=[*LOAD_DATAFRAME_COLUMNS, *keys])


def _read_json(path: Path) -> tuple[Any, str | None]:
    """A JSON file's value, or the problem with it (never an exception)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{path.name} cannot be read: {exc}"
    if not text.strip():
        return None, f"{path.name} is empty (a full disk on the cluster?)"
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, f"{path.name} is damaged (not JSON: {exc})"


#: Types of the fields of ``run`` that readers use; a field of another type is dropped.
_RUN_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (str,), "task": (int,), "hostname": (str,), "job_id": (str, type(None)),
    "array_job_id": (str, type(None)), "array_task_id": (str, type(None)),
    "started_at": (str,), "ended_at": (str, type(None)), "interrupted": (bool,),
    "versions": (dict,), "server": (dict,), "models": (list,), "checks_planned": (list,),
    "point": (dict,), "duration_s": (int, float), "interrupted_by": (str,)}
#: Fields every results entry has, and their types.
_ENTRY_FIELDS: dict[str, tuple[type, ...]] = {
    "check": (str,), "status": (str,), "message": (str,), "duration_s": (int, float),
    "protocol": (str, type(None)), "model": (str, type(None)), "details": (dict,)}


def _valid_entries(value: Any) -> tuple[list[ResultEntry], int]:
    """The well-formed result entries of a list, and how many were not."""
    if not isinstance(value, list):
        return [], 0 if value is None else 1
    good = [e for e in value if isinstance(e, dict) and all(
        k in e and isinstance(e[k], types) for k, types in _ENTRY_FIELDS.items())]
    return cast("list[ResultEntry]", good), len(value) - len(good)


def read_results_document(path: Path) -> tuple[ResultsDocument, str | None]:
    """A task's ``results.json``, checked: (document, problem). A damaged file gives an
    empty document and says why; malformed entries are dropped and counted.

    Example::

        >>> read_results_document(Path("results/0/results.json"))[1] is None
        True
    """
    data, problem = _read_json(path)
    empty = cast("ResultsDocument", {})
    if problem is not None:
        return empty, problem
    if not isinstance(data, dict) or not isinstance(data.get("run", {}), dict):
        return empty, f"{path.name} is damaged: not a results document"
    entries, bad = _valid_entries(data.get("checks"))
    run = dict(data.get("run", {}))
    wrong = sorted(k for k, types in _RUN_FIELDS.items()
                   if k in run and not isinstance(run[k], types))
    for key in wrong:
        del run[key]
    doc = cast("ResultsDocument", {**data, "checks": entries, "run": run})
    problems = [f"{bad} malformed result entr" + ("ies" if bad > 1 else "y") + " left out"
                ] if bad else []
    problems += [f"run.{k} is malformed and was left out" for k in wrong]
    if problems:
        return doc, f"{path.name} is damaged: " + "; ".join(problems)
    return doc, None


def read_state_file(path: Path) -> tuple[StateFile | None, str | None]:
    """A task's ``state.json``, checked: (state, problem)."""
    data, problem = _read_json(path)
    if problem is not None:
        return None, problem
    if not isinstance(data, dict) or data.get("phase") not in ("running", "finished"):
        return None, f"{path.name} is damaged: not a job state"
    code = data.get("exit_code")
    if code is not None and not isinstance(code, int):
        return None, f"{path.name} is damaged: exit_code {code!r} is not a number"
    return cast("StateFile", data), None


def _cell(value: Any) -> Any:
    """Sweep values as dataframe cells: scalars as they are, the rest as JSON text."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value

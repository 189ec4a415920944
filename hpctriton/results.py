"""Collected results: every task's ``results.json``, read back as one object.

Example::

    >>> from hpctriton import open_run
    >>> res = open_run().results()
    >>> res.ok, len(res.checks)
    (True, 14)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("pass", "fail", "error", "skip")


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

    @property
    def ok(self) -> bool:
        return self.status in ("pass", "skip")


@dataclass
class TaskResults:
    """One task's ``results.json`` (and ``state.json`` when collected)."""

    task: int
    data: dict[str, Any]
    state: dict[str, Any] | None = None

    @property
    def run_info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.data.get("run", {})
        return info

    @property
    def checks(self) -> list[CheckResult]:
        return [CheckResult(task=self.task, check=c.get("check", "?"),
                            protocol=c.get("protocol"), model=c.get("model"),
                            status=c.get("status", "error"),
                            duration_s=float(c.get("duration_s") or 0.0),
                            message=c.get("message", ""), details=c.get("details") or {})
                for c in self.data.get("checks", [])]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


@dataclass
class Results:
    """All tasks of a run (or one ``hpctriton check``)."""

    tasks: list[TaskResults] = field(default_factory=list)
    run_id: str = ""

    @classmethod
    def from_dir(cls, results_dir: Path, run_id: str = "") -> Results:
        """Read ``results/<task>/results.json`` for every task folder present."""
        tasks = []
        if results_dir.is_dir():
            for folder in sorted((p for p in results_dir.iterdir() if p.name.isdigit()),
                                 key=lambda p: int(p.name)):
                path = folder / "results.json"
                if not path.is_file():
                    continue
                data = json.loads(path.read_text(encoding="utf-8"))
                state_path = folder / "state.json"
                state = (json.loads(state_path.read_text(encoding="utf-8"))
                         if state_path.is_file() else None)
                tasks.append(TaskResults(int(folder.name), data, state))
        return cls(tasks, run_id)

    @classmethod
    def from_data(cls, data: dict[str, Any], task: int = 0) -> Results:
        """Wrap one results document (``hpctriton check``)."""
        return cls([TaskResults(task, data)], str(data.get("run", {}).get("run_id", "")))

    @property
    def checks(self) -> list[CheckResult]:
        return [c for t in self.tasks for c in t.checks]

    @property
    def ok(self) -> bool:
        """True when there are results and no check failed or errored (skips allowed)."""
        return bool(self.tasks) and all(t.ok for t in self.tasks)

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def by_check(self, name: str) -> list[CheckResult]:
        """Every result of one check (``res.by_check("infer")``)."""
        return [c for c in self.checks if c.check == name]

    def __iter__(self) -> Iterator[CheckResult]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "ok": self.ok, "counts": self.counts(),
                "tasks": [{"task": t.task, "ok": t.ok, "state": t.state, **t.data}
                          for t in self.tasks]}

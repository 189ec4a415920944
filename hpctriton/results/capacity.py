"""Capacity under a latency objective out of results: the one adapter between the load
check's capacity entries (``details.capacity``, ``schema.Capacity``) and the reports.

The probe decides the answer inside the job (rank 0 leads the search and merges every
rank's histograms at each step, so the job's exit code is right); there is nothing
to merge here. A load from several tasks keeps its capacity entries when ``collect``
merges the per-point entries (``results.model``).

Example::

    >>> for c in capacities(run.results()):
    ...     print(c.sentence)
    simple sustains 42 req/s with p99 ≤ 100 ms (VALID: 2,400 requests, 3 over the bound)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpctriton_probe.load.search import VALID, objective_text, sentence

if TYPE_CHECKING:
    from hpctriton.results.model import CheckResult, Results

log = logging.getLogger("hpctriton.results.capacity")


@dataclass(frozen=True)
class SearchStep:
    """One rate the search tried."""

    rate_per_s: float
    #: The objective's percentile of its first bound, in ms (None: nothing answered).
    percentile_ms: float | None
    verdict: str
    valid: bool
    requests: int
    over_bound: int
    reason: str = ""


@dataclass(frozen=True)
class CapacityResult:
    """The answer of one search for one model."""

    task: int
    model: str
    protocol: str | None
    #: The highest rate that met the objective (None: none did).
    rate_per_s: float | None
    verdict: str
    reason: str
    requests: int
    over_bound: int
    objective: dict[str, Any]
    steps: list[SearchStep] = field(default_factory=list)
    #: How many tasks made the load (their figures merged at every step).
    tasks: int = 1
    status: str = "pass"

    @property
    def valid(self) -> bool:
        return self.verdict == VALID

    @property
    def met(self) -> bool:
        """A valid answer exists (the check passed)."""
        return self.valid and self.rate_per_s is not None

    @property
    def sentence(self) -> str:
        """"simple sustains 42 req/s with p99 ≤ 100 ms (VALID: 2,400 requests, 3 over
        the bound)"."""
        return sentence(self.model, self.to_json())

    @property
    def objective_text(self) -> str:
        """``p99 ≤ 100 ms``."""
        return objective_text(self.objective)

    @property
    def bound_ms(self) -> float | None:
        """The bound the steps' ``percentile_ms`` is compared with (the first given)."""
        for name in ("latency_ms", "ttft_ms", "itl_ms"):
            if self.objective.get(name) is not None:
                return float(self.objective[name])
        return None

    def to_json(self) -> dict[str, Any]:
        return {"task": self.task, "model": self.model, "protocol": self.protocol,
                "rate_per_s": self.rate_per_s, "verdict": self.verdict,
                "reason": self.reason, "requests": self.requests,
                "over_bound": self.over_bound, "objective": dict(self.objective),
                "tasks": self.tasks, "status": self.status,
                "steps": [vars(s) for s in self.steps]}


def capacity_of_entry(entry: CheckResult) -> CapacityResult | None:
    """The capacity of one result entry (None for entries without one)."""
    if entry.check != "load" or entry.model is None:
        return None
    capacity = entry.details.get("capacity")
    if not isinstance(capacity, dict):
        return None
    try:
        steps = [SearchStep(float(s["rate_per_s"]),
                            None if s.get("percentile_ms") is None else
                            float(s["percentile_ms"]), str(s["verdict"]), bool(s["valid"]),
                            int(s["requests"]), int(s["over_bound"]), str(s.get("reason", "")))
                 for s in capacity.get("steps") or []]
        rate = capacity.get("rate_per_s")
        return CapacityResult(
            task=entry.task, model=str(entry.model), protocol=entry.protocol,
            rate_per_s=None if rate is None else float(rate),
            verdict=str(capacity["verdict"]), reason=str(capacity.get("reason") or ""),
            requests=int(capacity.get("requests") or 0),
            over_bound=int(capacity.get("over_bound") or 0),
            objective=dict(capacity.get("objective") or {}), steps=steps,
            tasks=int(entry.details.get("tasks") or 1), status=entry.status)
    except (KeyError, TypeError, ValueError) as exc:
        # a damaged results.json: left out of the reports, never a traceback
        log.warning("task %s: the capacity entry of model %s is damaged (%s: %s): left out",
                    entry.task, entry.model, type(exc).__name__, exc)
        return None


def capacities(results: Results | Iterable[CheckResult]) -> list[CapacityResult]:
    """Every capacity answer of a run, by task then model."""
    found = [c for c in map(capacity_of_entry, results) if c is not None]
    return sorted(found, key=lambda c: (c.task, c.model, c.protocol or ""))

"""Capacity under a latency objective: the search over open-loop rates, the judgement
of each step, and how the ranks of a job agree on the next step (``docs/capacity.md``).

The search (:class:`CapacitySearch`) is pure: it proposes a rate, is told how the step
at that rate went (:class:`Step`), and proposes the next. First it widens: rates double
from the first rate until one misses the objective (or ``max_rate`` is reached); then it
bisects between the highest rate that met it and the lowest that did not, until they are
within ``precision_percent`` % of each other or ``max_steps`` steps have run. The answer
is the highest rate that met the objective, never one that was not measured::

    >>> search = CapacitySearch(10.0, max_rate=None, precision_percent=5, max_steps=12)
    >>> capacity = search.run(measure)          # measure(rate) -> StepFigures
    >>> capacity["rate_per_s"], capacity["verdict"]
    (42.5, 'VALID')

A step is judged by :func:`judge` from its :class:`StepFigures`:

* **INVALID** when the client could not keep the schedule (``client_problem``): more
  than ``LATE_SHARE_LIMIT`` (1 %) of its sends, and at least ``LATE_MIN_COUNT`` (3), left
  late: more than ``LATE_MS`` (1 ms)
  after their intended time, or a tenth of the objective's tightest bound if that is
  more (:func:`late_ms`); or the client's self-check (``stats.self_check``) says a worker
  needs more than ``CORE_LIMIT`` (90 %) of a core at this rate. Such a step never
  counts as the server's capacity: the search stops and its verdict is INVALID,
  "client-bound: add tasks or workers". A step with nothing measured is INVALID too.
* **PASS** when MLPerf LoadGen's early-stopping test (:mod:`.early_stopping`) supports
  the claim "``percentile`` % of requests within every bound" at 99 % confidence, from
  the exact count of requests over a bound (a failed or unanswered request counts as
  over).
* **FAIL** otherwise: the percentile is over the bound, or too few requests were
  measured to support the claim with the number over it.

With several tasks (``tasks: N`` under ``srun``) rank 0 runs the search and the other
ranks follow it through files in the job's shared results folder (:class:`StepBoard`):
rank 0 writes ``step-<k>.json`` (the rate, the windows and the wall-clock start) by an
atomic rename; every rank runs the step at rate/N and writes its figures as
``rank-<r>-step-<k>.json``; rank 0 waits for them all, merges the histograms and
decides. ``done.json`` ends the search.

Standard library only; Python 3.7 compatible.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional

from hpctriton_probe.load import early_stopping
from hpctriton_probe.load.hist import Histogram

if TYPE_CHECKING:
    from hpctriton_probe.schema import Capacity, CapacityStep

VALID = "VALID"
INVALID = "INVALID"
PASS = "PASS"
FAIL = "FAIL"
#: A send is late when it leaves more than this after its intended time, or more than
#: ``LATE_BOUND_SHARE`` of the objective's tightest bound if that is more (the latency
#: runs from the intended time, so a late send eats into the bound: up to a tenth of it
#: is the client's noise, not its failure).
LATE_MS = 1.0
LATE_BOUND_SHARE = 0.1
#: A step's client could not keep the schedule above this share of late sends, when
#: at least ``LATE_MIN_COUNT`` were late (one stall of the client's process among a
#: few dozen sends is noise; a schedule it cannot keep makes many late sends).
LATE_SHARE_LIMIT = 0.01
LATE_MIN_COUNT = 3
#: ... or when a worker needs more than this share of a core (the self-check's figure).
CORE_LIMIT = 0.9
#: A step plans at least this many times ``min_requests`` ...
PLAN_FACTOR = 1.25
#: ... and at least ``min_requests`` plus this many standard deviations of a Poisson
#: count: with 1.25x alone a small ``min_requests`` (44 for p90) fell short about once
#: in 50 searches on a perfect queue (simulated), and a step short of requests fails.
PLAN_SIGMAS = 3.0
CLIENT_BOUND = "client-bound: add tasks or workers"
#: The short names of the objective's bounds, as the sentence shows them.
BOUND_LABELS = {"latency_ms": "", "ttft_ms": "TTFT ", "itl_ms": "ITL "}


def planned_requests(min_requests: int) -> float:
    """How many requests a step plans for: enough that Poisson arrivals bring at least
    ``min_requests`` in all but about one step in a thousand."""
    return max(PLAN_FACTOR * min_requests,
               min_requests + PLAN_SIGMAS * math.sqrt(min_requests))


def step_windows(rate: float, min_requests: int, window_s: float) -> int:
    """How many measurement windows a step at ``rate`` runs to measure
    :func:`planned_requests` requests (at least one)."""
    return max(1, int(math.ceil(planned_requests(min_requests) / (rate * window_s) - 1e-9)))


def default_min_requests(percentile: float) -> int:
    """What the early-stopping rule needs with none over the bound (459 for p99)."""
    return early_stopping.min_requests(0, percentile / 100.0)


def percentile_label(percentile: float) -> str:
    """``p99``, ``p99.9``, ``p90``."""
    return f"p{percentile:g}"


def objective_text(objective: Dict[str, Any]) -> str:
    """``p99 ≤ 100 ms``, ``p99 TTFT ≤ 500 ms and ITL ≤ 50 ms``."""
    label = percentile_label(float(objective.get("percentile", 99.0)))
    parts = [f"{BOUND_LABELS[name]}≤ {float(objective[name]):g} ms"
             for name in BOUND_LABELS if objective.get(name) is not None]
    return "{} {}".format(label, " and ".join(parts))


def _rate_text(rate: Optional[float]) -> str:
    if rate is None:
        return "-"
    return f"{rate:,.0f}" if rate >= 1000 else f"{rate:.4g}"


# ------------------------------------------------------------------- one step


class StepFigures:
    """What one step measured (one model; several models: one each, see ``judge``).

    ``requests``: answered and failed requests in the measured windows, plus those
    still unanswered at the end; ``over``: how many of them missed a bound (exact
    counts; failures and unanswered ones count as over); ``percentiles_ms``: the
    objective's percentile of each bounded figure, from the histograms (within 0.4 %);
    ``late_share`` and ``lag_p99_ms``: the client's send lag against the schedule;
    ``core_share``: the self-check's share of a core per worker (None if unmeasured).
    """

    def __init__(self, requests: int, over: int,
                 percentiles_ms: Optional[Dict[str, Optional[float]]] = None, *,
                 errors: int = 0, late_share: Optional[float] = 0.0,
                 lag_p99_ms: Optional[float] = None, core_share: Optional[float] = None,
                 throughput_rps: Optional[float] = None,
                 problem: Optional[str] = None, late_ms: float = LATE_MS,
                 late: Optional[int] = None) -> None:
        self.requests = int(requests)
        self.over = int(over)
        self.percentiles_ms = dict(percentiles_ms or {})
        self.errors = int(errors)
        self.late_share = late_share
        #: What counted as late (``late_ms``), and how many sends were (None: unknown).
        self.late_ms = late_ms
        self.late = late
        self.lag_p99_ms = lag_p99_ms
        self.core_share = core_share
        self.throughput_rps = throughput_rps
        #: Set when the step could not be measured at all (a rank did not report).
        self.problem = problem


class Step:
    """A judged step: its rate, figures, verdict (PASS, FAIL, INVALID) and why."""

    def __init__(self, rate: float, figures: StepFigures, verdict: str, reason: str,
                 needed: Optional[int] = None) -> None:
        self.rate = rate
        self.figures = figures
        self.verdict = verdict
        self.reason = reason
        #: The requests the early-stopping rule needs with ``figures.over`` over.
        self.needed = needed

    @property
    def valid(self) -> bool:
        return self.verdict != INVALID

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    def to_json(self, index: int, objective: Dict[str, Any]) -> CapacityStep:
        f = self.figures
        first = next((n for n in BOUND_LABELS if objective.get(n) is not None), "latency_ms")
        return {"step": index, "rate_per_s": round(self.rate, 6),
                "percentile_ms": f.percentiles_ms.get(first),
                "percentiles_ms": dict(f.percentiles_ms),
                "valid": self.valid, "verdict": self.verdict, "requests": f.requests,
                "over_bound": f.over, "needed": self.needed, "errors": f.errors,
                "throughput_rps": f.throughput_rps,
                "late_share": None if f.late_share is None else round(f.late_share, 5),
                "late_ms": f.late_ms, "late": f.late,
                "lag_p99_ms": f.lag_p99_ms, "core_share": f.core_share,
                "reason": self.reason}


def client_problem(figures: StepFigures) -> Optional[str]:
    """Why the client could not keep the schedule of a step (None when it could)."""
    if (figures.late_share is not None and figures.late_share > LATE_SHARE_LIMIT
            and (figures.late is None or figures.late >= LATE_MIN_COUNT)):
        return "{} ({:.1f} % of sends left more than {:g} ms late; p99 lag {} ms)".format(
            CLIENT_BOUND, 100 * figures.late_share, figures.late_ms,
            "-" if figures.lag_p99_ms is None else f"{figures.lag_p99_ms:.1f}")
    if figures.core_share is not None and figures.core_share > CORE_LIMIT:
        share = 100 * figures.core_share
        return (f"{CLIENT_BOUND} (a worker needs {share:.0f} % of a core at this rate; "
                f"limit {100 * CORE_LIMIT:.0f} %)")
    return None


def judge(rate: float, figures: StepFigures, objective: Dict[str, Any]) -> Step:
    """The verdict of one step at ``rate`` against ``objective`` (``{"percentile": 99,
    "latency_ms": 100, ...}``): INVALID, PASS or FAIL (see the module)."""
    if figures.problem:
        return Step(rate, figures, INVALID, figures.problem)
    problem = client_problem(figures)
    if problem:
        return Step(rate, figures, INVALID, problem)
    if figures.requests <= 0:
        return Step(rate, figures, INVALID, "nothing was measured at this rate")
    share = float(objective.get("percentile", 99.0)) / 100.0
    needed = early_stopping.min_requests(figures.over, share)
    label = percentile_label(100 * share)
    shown = ", ".join(f"{BOUND_LABELS[n]}{label} {_ms_text(v)}"
                      for n, v in figures.percentiles_ms.items())
    if figures.over > (1.0 - share) * figures.requests:
        return Step(rate, figures, FAIL, f"{shown or label} over the objective: "
                    f"{figures.over} of {figures.requests} requests over the bound", needed)
    if figures.requests < needed:
        return Step(rate, figures, FAIL, "not enough requests to support the claim at "
                    f"99 % confidence: {figures.over} of {figures.requests} over the bound "
                    f"needs {needed} requests", needed)
    return Step(rate, figures, PASS, f"{shown or label}; {figures.over} of "
                f"{figures.requests} requests over the bound (early stopping needs "
                f"{needed})", needed)


def _ms_text(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def step_text(step: Mapping[str, Any], objective: Mapping[str, Any]) -> str:
    """How a search step's result entry begins: the step, its rate and what it showed,
    worded so that a step over the objective reads as what a search expects (its entry
    passes: ``docs/capacity.md``, "Results"). ``step`` is a ``schema.CapacityStep``::

        >>> step_text(step, {"percentile": 99, "latency_ms": 100})
        'search step 2 at 40 req/s: p99 265.0 ms > 100 ms; 73 of 90 requests over the
        bound (over the objective, as a search expects: it narrows below 40 req/s)'
    """
    rate = _rate_text(step.get("rate_per_s"))
    head = "search step {} at {} req/s".format(step.get("step"), rate)
    verdict = step.get("verdict")
    if verdict == INVALID:
        return "{}: INVALID, not the server's capacity: {}".format(head, step.get("reason"))
    share = float(objective.get("percentile", 99.0)) / 100.0
    label = percentile_label(100 * share)
    shown = []
    for name, value in (step.get("percentiles_ms") or {}).items():
        bound = objective.get(name)
        text = "{}{} {}".format(BOUND_LABELS.get(name, ""), label, _ms_text(value))
        if value is not None and bound is not None:
            text += " {} {:g} ms".format(">" if value > float(bound) else "≤", float(bound))
        shown.append(text)
    over, requests = int(step.get("over_bound") or 0), int(step.get("requests") or 0)
    counts = f"{over} of {requests} requests over the bound"
    figures = "{}; {}".format(", ".join(shown), counts) if shown else counts
    if verdict == PASS:
        return (f"{head}: {figures}, early stopping needs {step.get('needed')} "
                f"(within the objective: the answer is at least {rate} req/s)")
    if over > (1.0 - share) * requests:
        return (f"{head}: {figures} (over the objective, as a search expects: it narrows "
                f"below {rate} req/s)")
    return (f"{head}: {figures}, too few to claim {label} within the bound at 99 % "
            f"confidence (early stopping needs {step.get('needed')}): counted as over the "
            f"objective, the search narrows below {rate} req/s")


def late_ms(objective: Mapping[str, Any]) -> float:
    """When a send counts as late for ``objective`` (see ``LATE_MS``)."""
    bounds = [float(objective[n]) for n in BOUND_LABELS if objective.get(n) is not None]
    return max(LATE_MS, LATE_BOUND_SHARE * min(bounds)) if bounds else LATE_MS


def combine(steps: List[Step]) -> Step:
    """One step from the judged steps of several models at one rate: the worst verdict
    decides (INVALID, then FAIL), the figures are summed."""
    order = {INVALID: 0, FAIL: 1, PASS: 2}
    worst = min(steps, key=lambda s: order[s.verdict])
    if len(steps) == 1:
        return worst
    figures = StepFigures(sum(s.figures.requests for s in steps),
                          sum(s.figures.over for s in steps),
                          worst.figures.percentiles_ms, errors=sum(s.figures.errors
                                                                   for s in steps),
                          late_share=worst.figures.late_share, late_ms=worst.figures.late_ms,
                          lag_p99_ms=worst.figures.lag_p99_ms,
                          core_share=worst.figures.core_share)
    return Step(worst.rate, figures, worst.verdict, worst.reason, worst.needed)


# ------------------------------------------------------------------- the search


class CapacitySearch:
    """Widen, then bisect (see the module). ``next_rate()`` proposes the next rate (None
    when the search is over), ``record(step)`` takes the judged step at that rate."""

    def __init__(self, start: float, max_rate: Optional[float], precision_percent: float,
                 max_steps: int) -> None:
        if start <= 0:
            raise ValueError(f"the first rate must be above zero, got {start}")
        self.start = float(start)
        self.max_rate = None if max_rate is None else float(max_rate)
        self.precision = precision_percent / 100.0
        self.max_steps = int(max_steps)
        self.steps: List[Step] = []
        #: The highest rate that met the objective, the lowest that did not.
        self.lo: Optional[Step] = None
        self.hi: Optional[Step] = None
        self.invalid: Optional[Step] = None
        self.ended: Optional[str] = None

    @property
    def done(self) -> bool:
        return self.ended is not None

    def next_rate(self) -> Optional[float]:
        if self.ended is not None:
            return None
        if not self.steps:
            return self._propose(self.start)
        if len(self.steps) >= self.max_steps:
            return self._end("max_steps")
        lo, hi = self.lo, self.hi
        if lo is None:
            return self._end("none")  # the first rate missed the objective
        if hi is None:  # widening
            if self.max_rate is not None and lo.rate >= self.max_rate:
                return self._end("max_rate")
            rate = lo.rate * 2.0
            if self.max_rate is not None:
                rate = min(rate, self.max_rate)
            return self._propose(rate)
        if (hi.rate - lo.rate) / lo.rate <= self.precision:
            return self._end("precision")
        return self._propose((lo.rate + hi.rate) / 2.0)

    def _propose(self, rate: float) -> float:
        return round(rate, 6)

    def _end(self, why: str) -> Optional[float]:
        self.ended = why
        return None

    def record(self, step: Step) -> None:
        self.steps.append(step)
        if not step.valid:
            self.invalid = step
            self.ended = "invalid"
        elif step.passed:
            if self.lo is None or step.rate > self.lo.rate:
                self.lo = step
        elif self.hi is None or step.rate < self.hi.rate:
            self.hi = step

    def run(self, measure: Callable[[float], StepFigures],
            objective: Dict[str, Any]) -> Capacity:
        """The whole search with ``measure(rate)`` giving each step's figures."""
        while True:
            rate = self.next_rate()
            if rate is None:
                return self.result(objective)
            self.record(judge(rate, measure(rate), objective))

    # ------------------------------------------------------------------ answer
    def reason(self) -> str:
        lo, hi = self.lo, self.hi
        if self.ended == "invalid" and self.invalid is not None:
            return "step {} at {}/s: {}".format(len(self.steps) - 1, _rate_text(
                self.invalid.rate), self.invalid.reason)
        if lo is None:
            first = self.steps[0] if self.steps else None
            if first is None:
                return "no step ran"
            return (f"the first rate, {_rate_text(first.rate)}/s, already misses the "
                    f"objective: {first.reason}")
        if self.ended == "max_rate":
            return f"max_rate {_rate_text(lo.rate)}/s met the objective: the server may take more"
        if hi is None:
            return (f"max_steps ({self.max_steps}) reached before a rate missed the objective: the "
                    f"capacity is at least {_rate_text(lo.rate)}/s")
        gap = 100.0 * (hi.rate - lo.rate) / lo.rate
        text = (f"{_rate_text(lo.rate)}/s met the objective, {_rate_text(hi.rate)}/s did "
                f"not ({gap:.1f} % apart")
        if self.ended == "max_steps" and gap > 100 * self.precision:
            return text + (f"; max_steps ({self.max_steps}) reached before "
                           f"{100 * self.precision:g} %)")
        return text + f", within {100 * self.precision:g} %)"

    def result(self, objective: Dict[str, Any]) -> Capacity:
        """``details.capacity`` (``schema.Capacity``)."""
        lo = self.lo
        basis = lo if lo is not None else (self.steps[0] if self.steps else None)
        verdict = INVALID if self.invalid is not None or not self.steps else VALID
        return {"rate_per_s": None if lo is None else round(lo.rate, 6),
                "objective": dict(objective), "verdict": verdict,
                "reason": self.reason(), "met": lo is not None and verdict == VALID,
                "requests": basis.figures.requests if basis is not None else 0,
                "over_bound": basis.figures.over if basis is not None else 0,
                "precision_percent": round(100 * self.precision, 6),
                "bracket": [None if lo is None else lo.rate,
                            None if self.hi is None else self.hi.rate],
                "steps": [s.to_json(i, objective) for i, s in enumerate(self.steps)]}


def sentence(model: str, capacity: Mapping[str, Any]) -> str:
    """The one sentence a report leads with: "simple sustains 42 req/s with p99 ≤ 100 ms
    (VALID: 2,400 requests, 3 over the bound)"."""
    objective = objective_text(capacity.get("objective") or {})
    verdict = capacity.get("verdict") or INVALID
    counts = "{:,} requests, {:,} over the bound".format(
        int(capacity.get("requests") or 0), int(capacity.get("over_bound") or 0))
    rate = capacity.get("rate_per_s")
    if verdict != VALID:
        head = f"{model} capacity with {objective} is not known" if rate is None \
            else f"{model} sustains at least {_rate_text(rate)} req/s with {objective}"
        return "{} (INVALID: {})".format(head, capacity.get("reason") or "")
    if rate is None:
        first = (capacity.get("steps") or [{}])[0]
        return "{} misses {} even at {} req/s (VALID: {})".format(
            model, objective, _rate_text(first.get("rate_per_s")), counts)
    return f"{model} sustains {_rate_text(rate)} req/s with {objective} (VALID: {counts})"


# --------------------------------------------------------------- figures of a step


def step_figures(point: Dict[str, Any], summary: Dict[str, Any], model: str,
                 objective: Dict[str, Any]) -> StepFigures:
    """One model's :class:`StepFigures` from a step's point document (one rank, or the
    ranks merged) and its ``stats.point_summary``."""
    data = (point.get("models") or {}).get(model) or {}
    windows = data.get("windows") or []
    share = float(objective.get("percentile", 99.0)) / 100.0
    hists = {"latency_ms": Histogram(), "ttft_ms": Histogram(), "itl_ms": Histogram()}
    keys = {"latency_ms": "hist", "ttft_ms": "ttft", "itl_ms": "itl"}
    answered = over = failed = 0
    for w in windows:
        answered += int(w.get("ok", 0))
        over += int(w.get("over") or 0)
        failed += sum(int(v) for v in (w.get("errors") or {}).values())
        for name, key in keys.items():
            if w.get(key):
                hists[name].merge(Histogram.from_json(w[key]))
    unanswered = int(data.get("unanswered") or 0)
    percentiles: Dict[str, Optional[float]] = {}
    for name in BOUND_LABELS:
        if objective.get(name) is not None:
            value = hists[name].quantile(share)
            percentiles[name] = None if value is None else round(value / 1000.0, 3)
    late_share: Optional[float] = None
    late: Optional[int] = None
    lag_p99: Optional[float] = None
    if data.get("lag"):
        lag = Histogram.from_json(data["lag"])
        if lag.count:
            late = lag.count_above(late_ms(objective) * 1000.0)
            late_share = late / float(lag.count)
            p99 = lag.quantile(0.99)
            lag_p99 = None if p99 is None else round(p99 / 1000.0, 3)
    check = (summary.get("client") or {}).get("self_check") or {}
    core = check.get("core_share") if check.get("measured") else None
    fig = (summary.get("models") or {}).get(model) or {}
    return StepFigures(answered + failed + unanswered, over + failed + unanswered,
                       percentiles, errors=failed + unanswered, late_share=late_share,
                       late_ms=late_ms(objective), late=late,
                       lag_p99_ms=lag_p99, core_share=None if core is None else float(core),
                       throughput_rps=fig.get("throughput_rps"))


# --------------------------------------------------------- ranks agreeing on steps


class BoardTimeout(RuntimeError):
    """A rank did not write its step file in time."""


class StepBoard:
    """Files in the job's shared results folder through which rank 0 leads a search
    and the other ranks follow (see the module). ``session`` (the job's common start
    time) tells this job's files from those a previous attempt left."""

    POLL_S = 0.05

    def __init__(self, folder: str, rank: int, ranks: int, session: str) -> None:
        self.folder = folder
        self.rank = rank
        self.ranks = ranks
        self.session = session
        os.makedirs(folder, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def _write(self, name: str, doc: Dict[str, Any]) -> None:
        from hpctriton_probe.results import atomic_write

        atomic_write(self._path(name), json.dumps(dict(doc, session=self.session),
                                                  separators=(",", ":")) + "\n",
                     durable=False)

    def _read(self, name: str) -> Optional[Dict[str, Any]]:
        try:
            with open(self._path(name), encoding="utf-8") as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or doc.get("session") != self.session:
            return None  # not yet written, or left by an earlier attempt
        return doc

    def _wait(self, names: List[str], deadline: float) -> Dict[str, Dict[str, Any]]:
        found: Dict[str, Dict[str, Any]] = {}
        while True:
            for name in names:
                if name not in found:
                    doc = self._read(name)
                    if doc is not None:
                        found[name] = doc
            if len(found) == len(names):
                return found
            if time.monotonic() >= deadline:
                raise BoardTimeout("not written in time: " + ", ".join(
                    n for n in names if n not in found))
            time.sleep(self.POLL_S)

    # rank 0
    def announce(self, step: int, doc: Dict[str, Any]) -> None:
        """Step ``step``: ``{"rate", "windows", "start_epoch"}``."""
        self._write(f"step-{step}.json", dict(doc, step=step))

    def finish(self, steps: int) -> None:
        self._write("done.json", {"steps": steps})

    def collect(self, step: int, deadline: float) -> Dict[int, Dict[str, Any]]:
        """The other ranks' points of ``step``, by rank (``BoardTimeout`` when one is
        missing at ``deadline``, on the ``time.monotonic`` clock)."""
        names = [f"rank-{r}-step-{step}.json" for r in range(1, self.ranks)]
        found = self._wait(names, deadline)
        return {r: found[f"rank-{r}-step-{step}.json"]["point"] for r in range(1, self.ranks)}

    # ranks 1..
    def next_step(self, step: int, deadline: float) -> Optional[Dict[str, Any]]:
        """Step ``step``'s announcement, or None when the search is over."""
        while True:
            doc = self._read(f"step-{step}.json")
            if doc is not None:
                return doc
            if self._read("done.json") is not None:
                return None
            if time.monotonic() >= deadline:
                raise BoardTimeout(f"rank 0 announced no step {step} in time")
            time.sleep(self.POLL_S)

    def report(self, step: int, point: Dict[str, Any]) -> None:
        self._write(f"rank-{self.rank}-step-{step}.json", {"step": step, "point": point})

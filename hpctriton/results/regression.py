"""The regression gate: is a run worse than a baseline beyond noise?

``hpctriton compare --baseline NAME RUN --fail-on-regression`` and ``hpctriton history``
judge each figure of a run against the same figure of a baseline run. A figure is
*regressed* only when the difference is larger than what the measurement itself could
explain. The rules (each verdict is printed with the rule that gave it):

* **Latency percentiles of a load point** (p50, p90, p95, p99): a confidence interval
  for the percentile from the point's own latency histogram (the windows its figures
  came from, ``load/rank-*.json``). With ``n`` requests, the rank of the sample
  ``q``-quantile is binomial (order statistics), so the true ``q``-quantile lies between
  the values at ranks ``n q ∓ z sqrt(n q (1-q))`` (normal approximation, ``z`` = 2.576,
  99 %; clamped to the first and last request): for a p99 of 300 requests that is about
  the p97.5 to the maximum. The run is regressed when its interval lies wholly above
  the baseline's and the difference exceeds the histogram's resolution (0.4 %).
* **Throughput of a load point**: requests counted over the point's windows are
  Poisson; the 99 % intervals ``(n ± z sqrt(n)) / seconds`` must not overlap (the run's
  lower).
* **Errors of a load point**: the share of failed requests, with 99 % Wilson intervals;
  regressed when the run's interval lies wholly above the baseline's.
* **And a minimum effect**: a latency or throughput change smaller than
  :data:`MIN_EFFECT_PCT` (5 %) is never a regression, even with disjoint intervals: a
  run's histogram shows the noise within the run, not between runs (another job on
  the node, a warmer cache), which a gate for CI pipelines must tolerate.
* **A check's status**: a check that passed in the baseline and fails (or errs) in the
  run is regressed, whatever the figures.
* **A tolerance the user sets** (``--tolerance p99=10%`` or ``--tolerance p99=5`` in the
  figure's unit) replaces the rule above for that figure, and is the only rule for
  figures without a noise model (a single inference's latency, keepalive means, the
  server's averages): without one they are shown as *not judged*.

Standard library only (plus the probe's histogram reader).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpctriton.results.load import PERCENTILES
from hpctriton.results.measures import BETTER, level_label, measures, task_scopes
from hpctriton.results.model import Results
from hpctriton.results.streaming import stream_measures

#: The two-sided 99 % normal quantile.
Z99 = 2.5758
#: A histogram reports a value within this relative error of the recorded one.
HIST_RESOLUTION = 2.0 ** -8
#: Changes smaller than this (percent of the baseline) are never regressions.
MIN_EFFECT_PCT = 5.0
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
#: Names a tolerance may use for a metric (``p99_ms`` is ``p99``).
ALIASES = {"throughput_rps": "throughput", "rps": "throughput", "latency_ms": "latency"}

REGRESSED, IMPROVED, SAME, NOT_JUDGED = "regressed", "improved", "same", "not judged"


@dataclass(frozen=True)
class Tolerance:
    """How much worse a figure may be: ``10%`` (relative) or ``5`` (in its unit)."""

    value: float
    relative: bool

    def text(self, unit: str) -> str:
        if self.relative:
            return f"{self.value:g}%"
        return f"{self.value:g} {unit}".strip()


def parse_tolerances(items: Sequence[str]) -> dict[str, Tolerance]:
    """``["p99_ms=10%", "throughput=5%"]`` as metric -> tolerance.

    Example::

        >>> parse_tolerances(["p99_ms=10%"])
        {'p99': Tolerance(value=10.0, relative=True)}
    """
    out: dict[str, Tolerance] = {}
    for item in items:
        name, sep, value = item.partition("=")
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", value)
        if not sep or not name.strip() or not match:
            raise ValueError(f"--tolerance {item!r}: write METRIC=PERCENT% or METRIC=VALUE "
                             "(p99=10%, p99_ms=5)")
        out[metric_name(name)] = Tolerance(float(match[1]), bool(match[2]))
    return out


def metric_name(name: str) -> str:
    """A tolerance's metric as the figures name it: ``p99_ms`` -> ``p99``."""
    key = name.strip()
    if key in ALIASES:
        return ALIASES[key]
    return re.sub(r"_(ms|rps|s)$", "", key)


@dataclass(frozen=True)
class Judgement:
    """One figure of the run against the baseline, with the rule that judged it."""

    section: str
    subject: str
    metric: str
    unit: str
    baseline: float | None
    value: float | None
    verdict: str
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {"section": self.section, "subject": self.subject, "metric": self.metric,
                "unit": self.unit, "baseline": self.baseline, "value": self.value,
                "verdict": self.verdict, "rule": self.rule}


@dataclass(frozen=True)
class Gate:
    """Every judgement of one run against a baseline."""

    baseline: str
    run: str
    judgements: list[Judgement]

    @property
    def regressions(self) -> list[Judgement]:
        return [j for j in self.judgements if j.verdict == REGRESSED]

    @property
    def regressed(self) -> bool:
        return bool(self.regressions)

    def to_json(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "run": self.run, "regressed": self.regressed,
                "judgements": [j.to_json() for j in self.judgements]}


# ------------------------------------------------------------------ statistics


def rank_interval(n: int, q: float, z: float = Z99) -> tuple[int, int]:
    """Ranks (1-based) between which the true ``q``-quantile lies with the confidence
    of ``z``, from ``n`` samples (binomial order statistics, normal approximation).

    Example::

        >>> rank_interval(300, 0.99)
        (291, 300)
    """
    mean = n * q
    spread = z * math.sqrt(n * q * (1.0 - q))
    low = max(1, int(math.floor(mean - spread)))
    high = min(n, int(math.ceil(mean + spread)) + 1)
    return low, high


def percentile_interval(hist: Any, q: float, z: float = Z99) -> tuple[float, float] | None:
    """The confidence interval (ms) of a histogram's ``q``-quantile (microseconds)."""
    n = int(hist.count)
    if n <= 0:
        return None
    low, high = rank_interval(n, q, z)
    lo, hi = hist.quantile(low / n), hist.quantile(high / n)
    if lo is None or hi is None:
        return None
    return lo / 1000.0, hi / 1000.0


def poisson_interval(count: int, seconds: float, z: float = Z99) -> tuple[float, float]:
    """The rate ``count / seconds`` with its interval."""
    spread = z * math.sqrt(max(count, 1))
    return max(0.0, (count - spread) / seconds), (count + spread) / seconds


def wilson_interval(bad: int, total: int, z: float = Z99) -> tuple[float, float]:
    """Wilson's interval of a share ``bad / total``."""
    if total <= 0:
        return 0.0, 1.0
    p = bad / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


# ------------------------------------------------------------------- load points


@dataclass
class PointNoise:
    """What the noise rules need of one load point: its latency histogram and counts."""

    hist: Any | None
    requests: int
    errors: int
    seconds: float | None


def _point_hist(results_dir: Path, task: int, details: Mapping[str, Any],
                model: str, cache: dict[int, Any]) -> Any | None:
    """The histogram of the windows a point's figures came from (None: not found)."""
    from hpctriton.runs.merge import read_rank_docs
    from hpctriton_probe.load import stats as loadstats
    from hpctriton_probe.load.hist import Histogram

    if task not in cache:
        docs, _ = read_rank_docs(results_dir / str(task))
        cache[task] = (loadstats.merge_rank_docs(docs) if len(docs) > 1 else
                       docs[0] if docs else None)
    doc = cache[task]
    if doc is None:
        return None
    try:
        load = next(x for x in doc["loads"] if x.get("load_index") == details["load_index"])
        point = next(p for p in load["points"] if p.get("index") == details["point_index"])
        windows = point["models"][model]["windows"]
        used = (details.get("windows") or {}).get("used") or range(len(windows))
        hist = Histogram()
        for i in used:
            if 0 <= i < len(windows) and windows[i].get("hist"):
                hist.merge(Histogram.from_json(windows[i]["hist"]))
        return hist
    except (KeyError, StopIteration, TypeError, ValueError, IndexError):
        return None


def point_noise(results: Results, results_dir: Path | None) -> dict[tuple[str, ...], PointNoise]:
    """Each load point's noise inputs, keyed as :class:`~hpctriton.results.measures.Measure`
    keys are but the metric: ``(section, scope, model, protocol, level)``."""
    scopes = task_scopes(results.tasks)
    cache: dict[int, Any] = {}
    out: dict[tuple[str, ...], PointNoise] = {}
    for c in results.checks:
        d = c.details
        if c.check != "load" or c.model is None or "mode" not in d:
            continue
        mode = d["mode"]
        level_value = d.get("request_rate") if mode == "request_rate" else d.get("concurrency")
        if not isinstance(level_value, (int, float)):
            continue
        key = ("load", scopes.get(c.task, ""), c.model, c.protocol or "",
               level_label(mode, float(level_value)))
        hist = _point_hist(results_dir, c.task, d, c.model, cache) \
            if results_dir is not None else None
        errors = d.get("errors") or {}
        out[key] = PointNoise(hist, int(d.get("requests") or 0),
                              sum(int(v) for v in errors.values()),
                              float(d["duration_s"]) if d.get("duration_s") else None)
    return out


# ------------------------------------------------------------------------ judging


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def _by_tolerance(base: float, value: float, better: str, tol: Tolerance,
                  unit: str) -> tuple[str, str]:
    worse = value - base if better == "lower" else base - value
    limit = abs(base) * tol.value / 100.0 if tol.relative else tol.value
    rule = f"tolerance {tol.text(unit)} (set by you)"
    if worse > limit:
        return REGRESSED, rule
    if -worse > limit:
        return IMPROVED, rule
    return SAME, rule


def _latency(metric: str, base: PointNoise | None, run: PointNoise | None, b: float,
             v: float) -> tuple[str, str]:
    q = QUANTILES[metric]
    if base is None or run is None or base.hist is None or run.hist is None \
            or not base.hist.count or not run.hist.count:
        return NOT_JUDGED, "no latency histogram to judge noise from (give --tolerance)"
    bi, ri = percentile_interval(base.hist, q), percentile_interval(run.hist, q)
    if bi is None or ri is None:
        return NOT_JUDGED, "empty histogram"
    rule = (f"99% CI of {metric} from {base.hist.count}/{run.hist.count} requests "
            f"(binomial order statistics): [{_fmt(bi[0])}, {_fmt(bi[1])}] vs "
            f"[{_fmt(ri[0])}, {_fmt(ri[1])}] ms")
    effect = max(HIST_RESOLUTION * 100, MIN_EFFECT_PCT) / 100.0 * abs(b)
    rule += f", and a change over {MIN_EFFECT_PCT:g}%"
    if ri[0] > bi[1] and v - b > effect:
        return REGRESSED, rule
    if ri[1] < bi[0] and b - v > effect:
        return IMPROVED, rule
    return SAME, rule


def _throughput(base: PointNoise | None, run: PointNoise | None) -> tuple[str, str]:
    if base is None or run is None or not base.seconds or not run.seconds:
        return NOT_JUDGED, "no request counts (give --tolerance)"
    bi = poisson_interval(base.requests, base.seconds)
    ri = poisson_interval(run.requests, run.seconds)
    rule = (f"99% Poisson CI from {base.requests}/{run.requests} requests: "
            f"[{_fmt(bi[0])}, {_fmt(bi[1])}] vs [{_fmt(ri[0])}, {_fmt(ri[1])}] req/s, "
            f"and a change over {MIN_EFFECT_PCT:g}%")
    b, v = base.requests / base.seconds, run.requests / run.seconds
    effect = MIN_EFFECT_PCT / 100.0 * b
    if ri[1] < bi[0] and b - v > effect:
        return REGRESSED, rule
    if ri[0] > bi[1] and v - b > effect:
        return IMPROVED, rule
    return SAME, rule


def _errors(base: PointNoise | None, run: PointNoise | None) -> tuple[str, str]:
    if base is None or run is None:
        return NOT_JUDGED, "no request counts (give --tolerance)"
    bi = wilson_interval(base.errors, base.requests + base.errors)
    ri = wilson_interval(run.errors, run.requests + run.errors)
    rule = (f"99% Wilson CI of the error share: [{bi[0]:.2%}, {bi[1]:.2%}] vs "
            f"[{ri[0]:.2%}, {ri[1]:.2%}]")
    if ri[0] > bi[1]:
        return REGRESSED, rule
    if ri[1] < bi[0]:
        return IMPROVED, rule
    return SAME, rule


def judge(baseline: Results, run: Results, *, baseline_dir: Path | None = None,
          run_dir: Path | None = None,
          tolerances: Mapping[str, Tolerance] | None = None) -> Gate:
    """Judge every figure of ``run`` against ``baseline`` (``*_dir``: their results
    folders, where the load histograms are).

    Example::

        >>> gate = judge(base.results(), run.results(), baseline_dir=base.path / "results",
        ...              run_dir=run.path / "results")
        >>> [(j.subject, j.metric, j.verdict) for j in gate.regressions]
        [('paced grpc, concurrency 2', 'p99', 'regressed')]
    """
    tolerances = dict(tolerances or {})
    base_noise = point_noise(baseline, baseline_dir)
    run_noise = point_noise(run, run_dir)
    base_m = {m.key: m for m in measures(baseline) + stream_measures(baseline)}
    out: list[Judgement] = []
    for m in measures(run) + stream_measures(run):
        b = base_m.get(m.key)
        if b is None:
            continue
        better = BETTER.get(m.metric)
        if better is None:
            continue
        point = m.key[:5]
        tol = tolerances.get(m.metric)
        if tol is not None:
            verdict, rule = _by_tolerance(b.value, m.value, better, tol, m.unit)
        elif m.section == "load" and m.metric in QUANTILES:
            verdict, rule = _latency(m.metric, base_noise.get(point), run_noise.get(point),
                                     b.value, m.value)
        elif m.section == "load" and m.metric == "throughput":
            verdict, rule = _throughput(base_noise.get(point), run_noise.get(point))
        elif m.section == "load" and m.metric == "errors":
            verdict, rule = _errors(base_noise.get(point), run_noise.get(point))
        else:
            verdict, rule = NOT_JUDGED, "no noise model for this figure (give --tolerance)"
        subject = m.subject + (f" [{m.scope}]" if m.scope else "")
        out.append(Judgement(m.section, subject, m.metric, m.unit, b.value, m.value,
                             verdict, rule))
    out += _status_judgements(baseline, run)
    return Gate(baseline.run_id, run.run_id, out)


def _status_judgements(baseline: Results, run: Results) -> list[Judgement]:
    base: dict[tuple[str, str, str], str] = {}
    for c in baseline.checks:
        base.setdefault((c.check, c.protocol or "", c.model or ""), c.status)
    out = []
    seen: set[tuple[str, str, str]] = set()
    for c in run.checks:
        key = (c.check, c.protocol or "", c.model or "")
        if key in seen or key not in base:
            continue
        seen.add(key)
        before = base[key]
        if before in ("pass", "skip") and c.status in ("fail", "error"):
            subject = " ".join(x for x in (c.check, c.protocol, c.model) if x)
            out.append(Judgement("status", subject, "status", "", None, None, REGRESSED,
                                 f"the check was {before} in the baseline, {c.status} now"))
    return out


#: Percentiles shown in history (the rules above judge p50..p99).
HISTORY_PERCENTILES = tuple(p for p in PERCENTILES if p in QUANTILES)

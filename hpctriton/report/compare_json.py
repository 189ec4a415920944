"""A comparison as plain JSON data (``hpctriton compare --json``)."""

from __future__ import annotations

from typing import Any

from hpctriton.results.compare import Comparison


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """Everything as plain data; differences keyed by run label (baseline first).

    Example::

        >>> comparison_json(compare_runs([run_a, run_b]))["metrics"][0]["diff"]
        {'triton': 1.3}
    """
    labels = comparison.labels
    others = range(1, len(labels))
    runs = [{"label": s.label, "run_id": s.results.run_id, "ok": s.results.ok,
             "counts": s.results.counts(), "tasks": len(s.results.tasks),
             "missing_tasks": s.results.missing_tasks,
             "path": str(s.path) if s.path else None} for s in comparison.sources]
    metrics = [{"section": r.section, "scope": r.scope, "model": r.model,
                "protocol": r.protocol, "level": r.level, "metric": r.metric,
                "unit": r.unit, "better": r.better,
                "values": dict(zip(labels, r.values, strict=True)),
                "diff": {labels[i]: r.diff(i) for i in others},
                "relative_pct": {labels[i]: r.relative(i) for i in others},
                "judgement": {labels[i]: r.judgement(i) for i in others}}
               for r in comparison.metrics]
    statuses = [{"scope": r.scope, "check": r.check, "protocol": r.protocol,
                 "model": r.model, "statuses": dict(zip(labels, r.statuses, strict=True)),
                 "changed": r.changed} for r in comparison.statuses]
    return {"baseline": comparison.baseline, "runs": runs, "metrics": metrics,
            "statuses": statuses}

"""Per model: the infer check's latency and the server's own time per request (the
statistics check), the numbers behind the reports' per-model table and figure.

Example::

    >>> [(t.model, t.infer_ms, t.server["queue"]) for t in model_times(res)]
    [('simple', {'grpc': 1.2, 'http': 1.9}, 0.04)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hpctriton.results.measures import measures, task_scopes
from hpctriton.results.model import Results


@dataclass(frozen=True)
class ModelTimes:
    """One model, in one sweep point, of one run."""

    #: The sweep point as text (``""`` without a sweep).
    scope: str
    model: str
    #: The infer check's request latency in ms, per protocol.
    infer_ms: dict[str, float] = field(default_factory=dict)
    #: Protocols on which the infer check failed or errored.
    infer_failed: frozenset[str] = frozenset()
    #: The statistics check's figures by measure name (``queue``, ``compute infer``,
    #: ``request``, ``failures``, ``batching ratio``...; see ``measures.SERVER_TIMES``).
    server: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        """What matches a model across runs: ``(scope, model)``."""
        return (self.scope, self.model)

    @property
    def has_figures(self) -> bool:
        """Some latency or server figure (not only failed inferences)."""
        return bool(self.infer_ms or self.server)


@dataclass(frozen=True)
class ModelGroups:
    """The models of several runs side by side."""

    #: Every ``(scope, model)`` of any run, in the order they first appear.
    keys: list[tuple[str, str]]
    #: Every protocol with an infer latency or failure, sorted.
    protocols: list[str]
    #: Per run, its models by key.
    runs: list[dict[tuple[str, str], ModelTimes]]


def model_times(results: Results, model: str | None = None) -> list[ModelTimes]:
    """Each model of a run (or only ``model``): first those with figures, in the order
    they appear, then those whose every inference failed, sorted.

    Example::

        >>> [t.infer_failed for t in model_times(res)]
        [frozenset(), frozenset({'grpc', 'http'})]
    """
    infer: dict[tuple[str, str], dict[str, float]] = {}
    server: dict[tuple[str, str], dict[str, float]] = {}
    for m in measures(results):
        key = (m.scope, m.model or "")
        if m.section not in ("infer", "server") or (model is not None and key[1] != model):
            continue
        if m.section == "infer":
            infer.setdefault(key, {}).setdefault(m.protocol or "", m.value)
            server.setdefault(key, {})
        else:
            infer.setdefault(key, {})
            server.setdefault(key, {}).setdefault(m.metric, m.value)
    scopes = task_scopes(results.tasks)
    failed: dict[tuple[str, str], set[str]] = {}
    for scope, name, protocol in sorted(
            (scopes.get(c.task, ""), c.model or "", c.protocol or "") for c in results.checks
            if c.check == "infer" and c.status in ("fail", "error")
            and (model is None or c.model == model)):
        failed.setdefault((scope, name), set()).add(protocol)
    keys = list(dict.fromkeys([*infer, *failed]))
    return [ModelTimes(scope, name, infer.get((scope, name), {}),
                       frozenset(failed.get((scope, name), ())), server.get((scope, name), {}))
            for scope, name in keys]


def model_groups(runs: Sequence[Results], model: str | None = None) -> ModelGroups:
    """The models of several runs, matched by ``(scope, model)``.

    Example::

        >>> model_groups([res_a, res_b]).keys
        [('', 'simple')]
    """
    per_run = [{t.key: t for t in model_times(res, model)} for res in runs]
    keys = list(dict.fromkeys(k for mine in per_run for k in mine))
    protocols = sorted({p for mine in per_run for t in mine.values()
                        for p in (*t.infer_ms, *t.infer_failed)})
    return ModelGroups(keys, protocols, per_run)

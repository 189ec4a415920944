"""Where a report's or a comparison's results come from: a :class:`Results`, a ``Run``,
a run folder (with ``run.json``), a results folder or one ``results.json``.

Example::

    >>> resolve_source("hpctriton-runs/20261121-224033-x").results.ok
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctriton.errors import RunNotFound
from hpctriton.results.model import Results, TaskResults, read_results_document

#: Anything results can be read from (see :func:`resolve_source`).
RunInput = Any


@dataclass(frozen=True)
class RunSource:
    """Results, a label for them, and run.json's fields when known."""

    results: Results
    label: str
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def resolve_source(source: RunInput, label: str | None = None) -> RunSource:
    """Results from a :class:`Results`, a ``Run``, a ``RunRecord``, a run folder (with
    ``run.json``), a results folder (``<task>/results.json``) or a ``results.json``.

    Example::

        >>> resolve_source(open_run()).info["backend"]
        'slurm'
    """
    if isinstance(source, RunSource):
        return source
    if isinstance(source, Results):
        return RunSource(source, label or source.run_id or "results")
    folder = getattr(source, "path", None)
    if isinstance(folder, Path) and (folder / "run.json").is_file():
        source = folder  # a Run or a RunRecord: read what they wrote
    if isinstance(source, (str, Path)):
        path = Path(source).expanduser()
        if (path / "run.json").is_file():
            res = Results.from_run_dir(path)  # checks run.json (a damaged one names its field)
            info = json.loads((path / "run.json").read_text(encoding="utf-8"))
            return RunSource(res, label or res.run_id or path.name, info, path)
        if path.is_file():
            doc, problem = read_results_document(path)
            res = Results([TaskResults(0, doc, read_problems=[problem] if problem else [])],
                          str(doc.get("run", {}).get("run_id", "")))
            return RunSource(res, label or res.run_id or path.name, {}, path)
        if path.is_dir():
            res = Results.from_dir(path, path.parent.name if path.name == "results" else "")
            if res.tasks:
                return RunSource(res, label or res.run_id or path.name, {}, path)
        raise RunNotFound(f"{path}: not a run folder (run.json), a results folder "
                          "(<task>/results.json) or a results.json file")
    raise TypeError(f"cannot make a report from {type(source).__name__}: give Results, a "
                    "Run, or the path of a run folder, results folder or results.json")

"""Load from several tasks of one job: merging what they wrote into one report for
the whole job (how many tasks a config asks for: :func:`hpctriton.config.load_tasks`).

A load check with ``tasks: N`` runs from N tasks of one job (``srun --ntasks N``,
which starts them together); each writes ``results/<task>/load/rank-<r>.json`` with
its measurement windows (answers, errors, latency histograms). Windows of all ranks
cover the same wall-clock intervals, so adding them window by window gives the
server's whole load; the stability rule and the figures are then computed on the sums
by the probe's own :mod:`hpctriton_probe.load.stats`. Tasks of a job array (sweep
points) do not start together, so folders of different tasks are never added up.

``collect`` calls :func:`merge_task_dir` for every task it accepts; it writes, beside
the task's ``results.json``::

    results/<task>/load-merged.json   # {"format": "hpctriton-load-report-1", "ranks": 3,
                                      #  "ranks_found": [0, 1, 2], "ranks_missing": [],
                                      #  "loads": [summary per load check],
                                      #  "entries": [results.json-style load entries]}
    results/<task>/load-merged.csv    # perf_analyzer-like, one row per point and model
                                      # (load-merged-<i>.csv for a task's i-th load check)

Example::

    >>> from pathlib import Path
    >>> from hpctriton.runs.merge import merge_task_dir
    >>> written = merge_task_dir(Path("runs/20261121-2240-x/results/0"))
    >>> [p.name for p in written]
    ['load-merged.json', 'load-merged.csv']
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctriton_probe.load import stats as loadstats

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry

log = logging.getLogger("hpctriton.runs.merge")

MERGED_JSON = "load-merged.json"
MERGED_CSV = "load-merged.csv"
REPORT_FORMAT = "hpctriton-load-report-1"


def read_rank_docs(task_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The rank documents of one task folder, and problems with unreadable ones."""
    docs: list[dict[str, Any]] = []
    problems: list[str] = []
    for path in sorted((task_dir / "load").glob("rank-*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: {exc}")
            continue
        if not isinstance(doc, dict) or doc.get("format") != loadstats.RANK_FORMAT:
            problems.append(f"{path.name}: not a load rank document")
            continue
        docs.append(doc)
    return docs, problems


def merge_docs(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The merged report for rank documents of one task (one rank works too).

    Example::

        >>> report = merge_docs([rank0, rank1, rank2])
        >>> report["entries"][0]["details"]["throughput_rps"]
        5460.2
    """
    merged = loadstats.merge_rank_docs(docs)
    expected = int(merged.get("ranks") or 1)
    found = list(merged.get("ranks_found") or [])
    summary = loadstats.summarize_run(merged)
    entries: list[ResultEntry] = []
    for load in merged["loads"]:
        ranks = int(load.get("ranks") or expected)
        for point in load.get("points") or []:
            entries.extend(loadstats.entries(load, point, rank=None if ranks > 1 else 0,
                                             ranks=ranks))
    return {"format": REPORT_FORMAT, "run_id": merged.get("run_id"), "task": merged.get("task"),
            "ranks": expected, "ranks_found": found,
            "ranks_missing": [r for r in range(expected) if r not in found],
            "hosts": merged.get("hosts"), "rlimit_nofile": merged.get("rlimit_nofile"),
            "loads": summary["loads"], "entries": entries}


def merge_task_dir(task_dir: Path) -> list[Path]:
    """Write ``load-merged.json`` and ``load-merged.csv`` into ``task_dir`` from its
    ``load/rank-*.json``; returns the files written (none without load files)."""
    docs, problems = read_rank_docs(task_dir)
    if not docs:
        if problems:
            log.warning("task folder %s: no readable load files (%s)", task_dir,
                        "; ".join(problems))
        return []
    report = merge_docs(docs)
    if problems:
        report["problems"] = problems
    if report["ranks_missing"]:
        log.warning("task folder %s: load files of ranks %s are missing", task_dir,
                    report["ranks_missing"])
    written = []
    json_path = task_dir / MERGED_JSON
    _write(json_path, json.dumps(report, indent=1) + "\n")
    written.append(json_path)
    for i, load in enumerate(report["loads"]):
        # one CSV per load check, as the probe writes load.csv, load-1.csv, ...
        csv_path = task_dir / (MERGED_CSV if i == 0 else f"load-merged-{i}.csv")
        _write(csv_path, loadstats.csv_text(load))
        written.append(csv_path)
    return written


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)

"""JUnit XML of a run for CI systems: the probe's own writer, over every task.

The XML comes from :func:`hpctriton_probe.junit.results_to_junit` — the function the
probe uses for each task's ``junit.xml`` — so a report made here matches the files the
jobs wrote. What a run adds: tasks that left no results (never ran, died before the
probe started, or were not collected) become a suite with one error each, and a task
whose job crashed (exit code, signal), was interrupted, left checks that never ran or
damaged files gets one more error test case naming the cause (the task's
``problems``), so CI never counts a crashed or half-run sweep as green.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpctriton.report.htmlkit import write_text
from hpctriton.results.source import RunInput, resolve_source
from hpctriton_probe.junit import results_to_junit


def _stand_in(run_id: str, task: int, message: str) -> dict[str, Any]:
    """A results document for a task without one: one ``error`` entry saying why."""
    return {"run": {"run_id": run_id, "task": task, "interrupted": False},
            "checks": [{"check": "job", "protocol": None, "model": None, "status": "error",
                        "duration_s": 0.0, "message": message, "details": {}}]}


def junit_xml(source: RunInput) -> str:
    """JUnit XML text: one ``<testsuite>`` per task, one ``<testcase>`` per result.

    Example::

        >>> xml = junit_xml(run.results())
        >>> 'failures="0"' in xml
        True
    """
    res = resolve_source(source).results
    docs: list[dict[str, Any]] = []
    for t in sorted(res.tasks, key=lambda t: t.task):
        problems = t.problems
        if t.has_results:
            doc = dict(t.data)
            doc["run"] = {**t.run_info, "task": t.run_info.get("task", t.task)}
            if problems:
                cause = _stand_in(res.run_id, t.task, "; ".join(problems))["checks"]
                doc["checks"] = [*t.data.get("checks", []), *cause]
            docs.append(doc)
        else:
            docs.append(_stand_in(res.run_id, t.task, "; ".join(problems) or "no results.json"))
    for task in res.missing_tasks:
        docs.append(_stand_in(res.run_id, task, "no results: the task did not run or its "
                                                "results were not collected"))
    docs.sort(key=lambda d: d["run"].get("task") if isinstance(d["run"].get("task"), int)
              else 0)
    return results_to_junit(docs)


def write_junit(source: RunInput, path: str | Path) -> Path:
    """Write the run's JUnit XML to ``path`` (atomically) and return the path.

    ``source`` is anything :func:`~hpctriton.report.html.write_html_report` takes:
    ``Results``, a ``Run``, or a run folder, results folder or ``results.json`` path.

    Example::

        >>> write_junit(open_run(), "junit.xml")
        PosixPath('junit.xml')
    """
    out = Path(path)
    write_text(out, junit_xml(source))
    return out

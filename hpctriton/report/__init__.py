"""Reports of results: terminal tables, one self-contained HTML file, JUnit XML, the
notebook view, and comparisons of runs. Reports read :mod:`hpctriton.results`, which
computes every figure they show; results never import reports.

Example::

    >>> from hpctriton.report import (compare_runs, write_comparison_html,
    ...                               write_html_report, write_junit)
    >>> write_html_report(run, "report.html")
    >>> write_junit(run, "junit.xml")
    >>> write_comparison_html(compare_runs([run_a, run_b]), "compare.html")

The modules import matplotlib only when a figure is drawn, and rich only where a
terminal table is made (:mod:`hpctriton.report.terminal`). The names above are imported
on first use, so a light module of the package (:mod:`hpctriton.report.summary`, which
``hpctriton check`` uses) loads none of the others.
"""

from __future__ import annotations

import typing as _typing

if _typing.TYPE_CHECKING:  # the names below, for type checkers; at run time: __getattr__
    from hpctriton.report.compare_html import comparison_html, write_comparison_html
    from hpctriton.report.compare_json import comparison_json
    from hpctriton.report.html import html_report, write_html_report
    from hpctriton.report.junit import junit_xml, write_junit
    from hpctriton.results.compare import Comparison, MetricRow, StatusRow, compare_runs
    from hpctriton.results.load import LoadPoint, load_points

__all__ = [
    "Comparison",
    "LoadPoint",
    "MetricRow",
    "StatusRow",
    "compare_runs",
    "comparison_html",
    "comparison_json",
    "html_report",
    "junit_xml",
    "load_points",
    "write_comparison_html",
    "write_html_report",
    "write_junit",
]


#: Where each name of ``__all__`` lives (a test keeps the two in step).
_LAZY = {
    "comparison_html": "hpctriton.report.compare_html",
    "write_comparison_html": "hpctriton.report.compare_html",
    "comparison_json": "hpctriton.report.compare_json",
    "html_report": "hpctriton.report.html", "write_html_report": "hpctriton.report.html",
    "junit_xml": "hpctriton.report.junit", "write_junit": "hpctriton.report.junit",
    "Comparison": "hpctriton.results.compare", "MetricRow": "hpctriton.results.compare",
    "StatusRow": "hpctriton.results.compare", "compare_runs": "hpctriton.results.compare",
    "LoadPoint": "hpctriton.results.load", "load_points": "hpctriton.results.load",
}


def __getattr__(name: str) -> object:
    """Import a name of ``__all__`` on first use, and keep it (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpctriton.report' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

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
terminal table is made (:mod:`hpctriton.report.terminal`).
"""

from __future__ import annotations

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

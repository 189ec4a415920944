"""Reports of results: terminal tables, one self-contained HTML file, JUnit XML, and
comparisons of runs.

Example::

    >>> from hpctriton.report import write_html_report, write_junit, compare_runs
    >>> write_html_report(run, "report.html")
    >>> write_junit(run, "junit.xml")
    >>> compare_runs([run_a, run_b]).write_html("compare.html")

The modules import matplotlib only when a figure is drawn, and rich only where a
terminal table is made.
"""

from __future__ import annotations

from hpctriton.report.compare import Comparison, MetricRow, StatusRow, compare_runs
from hpctriton.report.html import html_report, write_html_report
from hpctriton.report.junit import junit_xml, write_junit
from hpctriton.results.load import LoadPoint, load_points

__all__ = [
    "Comparison",
    "LoadPoint",
    "MetricRow",
    "StatusRow",
    "compare_runs",
    "html_report",
    "junit_xml",
    "load_points",
    "write_html_report",
    "write_junit",
]

"""Reports of a real collected run: the local backend runs the probe against the real
Triton of the test session, then every report is made from the run folder."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from e2e import make_config

from hpctriton.api import Run, open_run, submit
from hpctriton.report import (
    compare_runs,
    write_comparison_html,
    write_html_report,
    write_junit,
)
from hpctriton.results.model import DATAFRAME_COLUMNS

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory, triton: Any) -> Run:
    """A two-task sweep: ``simple`` (all checks pass) and ``echo_bytes`` + ``failing``
    (inference of ``failing`` fails by design)."""
    tmp = tmp_path_factory.mktemp("report-run")
    config = make_config(tmp, triton, None, backend="local", container={"runtime": "none"},
                         sweep={"models": [["simple"], ["echo_bytes", "failing"]]})
    run = submit(config, "test", wait=True)
    assert isinstance(run, Run)
    run.close()
    return run


def test_html_report_of_a_real_run(real_run: Run, tmp_path: Path) -> None:
    text = write_html_report(real_run, tmp_path / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I)
    assert real_run.run_id in text and ">FAILED<" in text
    assert 'id="task-0"' in text and 'id="task-1"' in text
    assert "models=[echo_bytes, failing]" in text  # the sweep point from run.json
    assert "What failed" in text and "failing" in text
    images = re.findall(r'src="data:image/png;base64,', text)
    assert len(images) == 2  # per model, timeline (no load check in this run)
    # the same page from the run folder, and from open_run
    again = write_html_report(real_run.path, tmp_path / "again.html").read_text()
    assert again.count('id="task-') == text.count('id="task-')
    reopened = open_run(real_run.run_id, runs_dir=real_run.path.parent)
    assert write_html_report(reopened, tmp_path / "3.html").stat().st_size > 10_000


def test_junit_of_a_real_run_counts_its_failures(real_run: Run, tmp_path: Path) -> None:
    res = real_run.results()
    root = ET.parse(write_junit(real_run, tmp_path / "junit.xml")).getroot()
    assert int(root.get("failures", "0")) == sum(c.status == "fail" for c in res.checks) == 2
    assert int(root.get("tests", "0")) == len(res.checks)
    assert len(root.findall("testsuite")) == 2
    # the jobs wrote one junit.xml per task: the report agrees with them
    for t in (0, 1):
        written = ET.parse(real_run.path / "results" / str(t) / "junit.xml").getroot()
        mine = root.findall("testsuite")[t]
        assert [c.get("name") for c in written.iter("testcase")] == \
            [c.get("name") for c in mine.iter("testcase")]


def test_notebook_views_of_a_real_run(real_run: Run) -> None:
    pytest.importorskip("pandas")
    res = real_run.results()
    html = res._repr_html_()
    assert "FAILED" in html and "infer" in html and "failing" in html
    df = res.to_dataframe()
    assert list(df.columns) == [*DATAFRAME_COLUMNS, "models"]
    assert set(df.loc[df.status == "fail", "model"]) == {"failing"}
    fig = res.plot()  # no load results: the timeline
    assert len(fig.axes) == 1


def test_compare_a_real_run_with_itself_shows_no_difference(real_run: Run,
                                                           tmp_path: Path) -> None:
    cmp = compare_runs([real_run, real_run.path], labels=["a", "b"])
    assert cmp.metrics and all(r.diff(1) == 0 for r in cmp.metrics)
    assert not any(r.changed for r in cmp.statuses)
    assert cmp.get("latency", model="simple", protocol="grpc").values[0] is not None
    page = write_comparison_html(cmp, tmp_path / "cmp.html").read_text()
    assert "Every check result has the same status in every run" in page

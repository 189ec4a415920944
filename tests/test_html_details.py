"""The HTML report's details (issue 16, point 7): labelled ports in the header, plot
titles inside their figure, whole-number concurrency ticks, concurrency written ``1``."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from hpctriton.report import compare_html, html, plots
from hpctriton.report.notebook import Results
from hpctriton.results.model_times import model_groups

DATA = Path(__file__).parent / "data"
RUN_A, RUN_B, SWEEP = DATA / "report_run_a", DATA / "report_run_b", DATA / "report_sweep"


def test_the_header_labels_each_port() -> None:
    page = html.html_report(RUN_A)
    assert re.search(r"<dt>server</dt><dd>127\.0\.0\.1 \(HTTP \d+, gRPC \d+, metrics \d+\)"
                     r"</dd>", page)


def test_load_tables_write_concurrency_as_a_whole_number() -> None:
    page = html.html_report(RUN_A)
    rows = re.findall(r'<td class="nw">concurrency</td><td class="num">([^<]*)</td>', page)
    assert rows and set(rows) == {"1", "2", "4", "8"}


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure the HTML reports draw (``figure_img`` is where they become PNGs)."""
    drawn: list[Any] = []

    def keep(fig: Any, alt: str) -> str:
        drawn.append(fig)
        return ""

    monkeypatch.setattr(html, "figure_img", keep)
    monkeypatch.setattr(compare_html, "figure_img", keep)
    return drawn


def _outside(fig: Any) -> list[str]:
    """Titles (and suptitles) drawn beyond the figure's edges."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    clipped = []
    texts = [t for ax in fig.axes  # the title at each location (ours are on the left)
             for t in (ax.title, ax._left_title, ax._right_title) if t.get_text()]
    texts += [t for t in (getattr(fig, "_suptitle", None),) if t is not None]
    for text in texts:
        extent = text.get_window_extent(renderer)
        if extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1:
            clipped.append(text.get_text())
    return clipped


@pytest.mark.parametrize("runs", [[RUN_A], [SWEEP], [RUN_A, RUN_B, SWEEP]],
                         ids=["run", "sweep", "compare"])
def test_plot_titles_stay_inside_their_figure(figures: list[Any], runs: list[Path],
                                              tmp_path: Path) -> None:
    if len(runs) == 1:
        html.html_report(runs[0])
    else:
        from hpctriton.report import compare_runs

        compare_html.comparison_html(compare_runs(runs))
    assert figures
    for fig in figures:
        assert not _outside(fig)


def test_a_one_model_figure_wraps_its_long_titles() -> None:
    one = Results.from_run_dir(SWEEP).tasks[0]  # one model, one task: a narrow figure
    fig = plots.models_figure(model_groups([Results([one], "one")]), [""])
    assert not _outside(fig)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert any("statistics" in t and "\n" in t for t in titles)  # wrapped, not cut


def test_concurrency_axes_have_whole_number_ticks() -> None:
    points = [p for p in Results.from_run_dir(RUN_A).load_points() if p.load <= 4]
    three = points + [dataclasses.replace(p, load=3.0) for p in points if p.load == 2]
    fig = plots.load_figure(three)  # 1..4: a linear axis, where 1.5 and 2.5 used to be
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_xlabel() == "concurrency"
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks

"""The early-stopping rule against MLPerf LoadGen's own figures.

FIGURES were printed by LoadGen's ``MinPassingQueriesFinder`` (``loadgen/early_stopping.cc``
of mlcommons/inference, compiled with g++ and called as ``f(t, p, 0.0, 0.99)``, the way
``PerformanceSummary::EarlyStopping`` calls it): percentile, requests over the bound,
the fewest requests under it.
"""

from __future__ import annotations

import pytest

from hpctriton_probe.load.early_stopping import (
    claim_holds,
    min_requests,
    min_requests_under,
    odds,
)

FIGURES = [
    (0.5, 0, 7),
    (0.5, 1, 10),
    (0.5, 2, 12),
    (0.5, 3, 14),
    (0.5, 5, 17),
    (0.5, 10, 25),
    (0.5, 20, 39),
    (0.5, 50, 78),
    (0.5, 100, 137),
    (0.9, 0, 44),
    (0.9, 1, 63),
    (0.9, 2, 79),
    (0.9, 3, 94),
    (0.9, 5, 122),
    (0.9, 10, 187),
    (0.9, 20, 305),
    (0.9, 50, 631),
    (0.9, 100, 1146),
    (0.95, 0, 90),
    (0.95, 1, 129),
    (0.95, 2, 163),
    (0.95, 3, 195),
    (0.95, 5, 254),
    (0.95, 10, 388),
    (0.95, 20, 636),
    (0.95, 50, 1322),
    (0.95, 100, 2404),
    (0.97, 0, 152),
    (0.97, 1, 218),
    (0.97, 2, 275),
    (0.97, 3, 329),
    (0.97, 5, 428),
    (0.97, 10, 657),
    (0.97, 20, 1077),
    (0.97, 50, 2243),
    (0.97, 100, 4082),
    (0.99, 0, 459),
    (0.99, 1, 661),
    (0.99, 2, 836),
    (0.99, 3, 998),
    (0.99, 5, 1302),
    (0.99, 10, 2000),
    (0.99, 20, 3284),
    (0.99, 50, 6848),
    (0.99, 100, 12471),
    (0.999, 0, 4603),
    (0.999, 1, 6635),
    (0.999, 2, 8401),
    (0.999, 3, 10039),
    (0.999, 5, 13100),
    (0.999, 10, 20130),
]


@pytest.mark.parametrize(("percentile", "over", "under"), FIGURES)
def test_min_requests_under_equals_loadgen(percentile: float, over: int, under: int) -> None:
    assert min_requests_under(over, percentile) == under


def test_p99_with_none_over_the_bound_needs_459_requests() -> None:
    assert min_requests(0, 0.99) == 459
    assert not claim_holds(458, 0, 0.99)
    assert claim_holds(459, 0, 0.99)


def test_requests_over_the_bound_count_in_the_total() -> None:
    # LoadGen's Server scenario: valid when queries_issued >= h + t
    assert min_requests(3, 0.99) == 998 + 3
    assert claim_holds(1001, 3, 0.99) and not claim_holds(1000, 3, 0.99)


def test_the_answer_is_the_first_count_whose_odds_pass() -> None:
    for over in (0, 1, 7):
        h = min_requests_under(over, 0.95)
        assert odds(h, over, 0.95) <= 0.01 < odds(h - 1, over, 0.95)


@pytest.mark.parametrize("bad", [0.0, 1.0, 99.0])
def test_percentile_is_a_share(bad: float) -> None:
    with pytest.raises(ValueError, match="share between 0 and 1"):
        min_requests_under(0, bad)

"""The probe's latency histogram against the ``hdrhistogram`` package and numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram

from hpctriton_probe.load.hist import (
    RELATIVE_ERROR,
    Histogram,
    bucket_bounds,
    bucket_index,
    merge_all,
)

QS = (0.5, 0.9, 0.95, 0.99, 0.999)


def latencies_us(n: int, seed: int = 1) -> np.ndarray:
    """Latency-like samples from 50 us to seconds: a lognormal body and a slow tail."""
    rng = np.random.default_rng(seed)
    body = rng.lognormal(mean=np.log(2000), sigma=0.6, size=n)
    tail = rng.lognormal(mean=np.log(200000), sigma=1.0, size=n // 50)
    values = np.concatenate([body, tail, rng.integers(0, 300, size=n // 20)])
    rng.shuffle(values)
    return np.maximum(values, 0).astype(np.int64)


def test_bucket_layout_is_hdrhistograms_with_two_significant_digits() -> None:
    hdr = HdrHistogram(1, 10**10, 2)
    values = np.unique(np.concatenate([np.arange(0, 2048), latencies_us(20000),
                                       np.array([10**9, 2**33 - 1, 2**33])]))
    for v in values.tolist():
        low, high = bucket_bounds(bucket_index(v))
        assert low <= v <= high
        if v > 0:  # hdrhistogram's lowest trackable value is 1
            assert (low, high) == (hdr.get_lowest_equivalent_value(v),
                                   hdr.get_highest_equivalent_value(v)), v


def test_quantiles_agree_with_hdrhistogram_within_the_stated_error() -> None:
    samples = latencies_us(10000 - 10000 // 50 - 10000 // 20, seed=2)
    samples = np.concatenate([samples, latencies_us(10000, seed=3)])[:10000]
    ours, hdr = Histogram(), HdrHistogram(1, 10**10, 2)
    for v in samples.tolist():
        ours.record(v)
        hdr.record_value(max(1, v))
    for q in (0.5, 0.9, 0.95, 0.99):  # q * 10000 is whole: both pick the same rank
        mine = ours.quantile(q)
        theirs = hdr.get_value_at_percentile(q * 100)
        assert mine is not None
        assert bucket_index(int(mine)) == bucket_index(theirs)
        assert abs(mine - theirs) <= RELATIVE_ERROR * theirs + 1


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_quantiles_within_the_stated_error_of_numpy_percentile(seed: int) -> None:
    samples = latencies_us(30000, seed=seed)
    hist = Histogram()
    for v in samples.tolist():
        hist.record(v)
    for q in QS:
        exact = float(np.percentile(samples, q * 100, method="inverted_cdf"))
        got = hist.quantile(q)
        assert got is not None
        assert abs(got - exact) <= RELATIVE_ERROR * exact + 0.5, (q, got, exact)
    assert hist.quantile(1.0) == samples.max() and hist.quantile(0.0) == samples.min()
    assert hist.mean() == pytest.approx(samples.mean())
    assert hist.quantiles(QS) == [hist.quantile(q) for q in QS]


def test_merged_histograms_equal_one_histogram_of_everything() -> None:
    samples = latencies_us(9000, seed=7)
    parts = np.array_split(samples, 3)
    one = Histogram()
    one.record_many(samples.tolist())
    pieces = []
    for part in parts:
        h = Histogram()
        h.record_many(part.tolist())
        pieces.append(h)
    merged = merge_all(pieces)
    assert merged.counts == one.counts
    assert (merged.count, merged.total, merged.min, merged.max) == (
        one.count, one.total, one.min, one.max)
    assert merged.quantiles(QS) == one.quantiles(QS)


def test_json_is_compact_and_round_trips() -> None:
    hist = Histogram()
    hist.record_many(latencies_us(50000, seed=8).tolist())
    data = hist.to_json()
    text = json.dumps(data, separators=(",", ":"))
    back = Histogram.from_json(json.loads(text))
    assert back.counts == hist.counts and back.quantiles(QS) == hist.quantiles(QS)
    assert len(text) < 12 * len(hist.counts) + 200  # deltas and counts: a few bytes a bucket
    with pytest.raises(ValueError):
        Histogram.from_json({**data, "count": data["count"] + 1})
    with pytest.raises(ValueError):
        Histogram(8).merge(Histogram(9))


def test_empty_histogram_has_no_quantiles() -> None:
    hist = Histogram()
    assert hist.quantile(0.5) is None and hist.mean() is None
    assert hist.quantiles([0.5, 0.99]) == [None, None]
    assert Histogram.from_json(hist.to_json()).count == 0

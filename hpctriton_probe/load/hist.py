"""A latency histogram with HdrHistogram's log-linear buckets: small, mergeable, JSON.

Why it is here: the load check must report percentiles of millions of latencies from
several Slurm tasks at once, and the only exact way to combine percentiles from many
processes is to add their histograms bucket by bucket. The probe may import only the
standard library, tritonclient and numpy, so it cannot use the ``hdrhistogram``
package; the tests check this one against it and against ``numpy.percentile``.

Layout (the same as HdrHistogram with a lowest value of 1 and ``bits = 8``, which is
HdrHistogram's "2 significant digits"): values are non-negative integers (the load
check records microseconds). Values below ``2**bits`` each have a bucket of their own;
above that, every power-of-two range ``[2**k, 2**(k+1))`` is split into
``2**(bits-1)`` equal buckets of width ``2**(k-bits+1)``. A bucket reports its middle,
so a reported value is within :data:`RELATIVE_ERROR` (``2**-bits``, 0.39 % for 8 bits)
of every value recorded in that bucket. Minimum, maximum, count and sum are exact.

Example::

    >>> h = Histogram()
    >>> for us in (120, 130, 2500, 90000):
    ...     h.record(us)
    >>> h.count, h.min, h.max
    (4, 120, 90000)
    >>> round(h.quantile(0.5))
    130
    >>> Histogram.from_json(h.to_json()).quantile(1.0)
    90000.0

Python 3.8 compatible, standard library only.
"""

import math
from typing import Dict, Iterable, List, Optional

DEFAULT_BITS = 8
#: The largest relative difference between a reported quantile and the recorded value
#: at that rank, for the default ``bits``.
RELATIVE_ERROR = 2.0 ** -DEFAULT_BITS
JSON_FORMAT = "hpctriton-hist-1"


def relative_error(bits: int) -> float:
    """Bound on ``|reported - recorded| / recorded`` for histograms of ``bits``."""
    return 2.0 ** -bits


def bucket_index(value: int, bits: int = DEFAULT_BITS) -> int:
    """The bucket of a non-negative integer ``value``."""
    if value < (1 << bits):
        return value
    shift = value.bit_length() - bits
    return shift * (1 << (bits - 1)) + (value >> shift)


def bucket_bounds(index: int, bits: int = DEFAULT_BITS) -> tuple:
    """``(lowest, highest)`` integer values of bucket ``index`` (both included)."""
    if index < (1 << bits):
        return index, index
    half = 1 << (bits - 1)
    shift = index // half - 1
    low = (index - shift * half) << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts per bucket, plus exact count, sum, minimum and maximum.

    ``record`` is the hot path of the load generator: one ``bit_length`` and one dict
    update. Histograms with the same ``bits`` merge exactly with ``merge``.
    """

    __slots__ = ("bits", "counts", "count", "total", "min", "max", "_limit")

    def __init__(self, bits: int = DEFAULT_BITS) -> None:
        if not 2 <= bits <= 20:
            raise ValueError(f"bits must be between 2 and 20, got {bits}")
        self.bits = bits
        self.counts: Dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min: Optional[int] = None
        self.max: Optional[int] = None
        self._limit = 1 << bits

    # ------------------------------------------------------------------ recording
    def record(self, value: int, times: int = 1) -> None:
        """Add ``value`` (an int >= 0; negative values are recorded as 0) ``times``."""
        if value < 0:
            value = 0
        if value < self._limit:
            index = value
        else:
            shift = value.bit_length() - self.bits
            index = shift * (self._limit >> 1) + (value >> shift)
        counts = self.counts
        counts[index] = counts.get(index, 0) + times
        self.count += times
        self.total += value * times
        if self.min is None or value < self.min:
            self.min = value
        if self.max is None or value > self.max:
            self.max = value

    def record_many(self, values: Iterable[int]) -> None:
        for v in values:
            self.record(int(v))

    def merge(self, other: "Histogram") -> "Histogram":
        """Add ``other`` into this histogram (same ``bits``); returns self."""
        if other.bits != self.bits:
            raise ValueError(f"cannot merge histograms of {other.bits} and {self.bits} bits")
        counts = self.counts
        for index, n in other.counts.items():
            counts[index] = counts.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        if other.min is not None and (self.min is None or other.min < self.min):
            self.min = other.min
        if other.max is not None and (self.max is None or other.max > self.max):
            self.max = other.max
        return self

    def copy(self) -> "Histogram":
        return Histogram(self.bits).merge(self)

    # ------------------------------------------------------------------- reading
    @property
    def relative_error(self) -> float:
        return relative_error(self.bits)

    def mean(self) -> Optional[float]:
        return self.total / self.count if self.count else None

    def count_above(self, value: float) -> int:
        """How many recorded values exceed ``value``, by bucket (a bucket counts when its
        middle does: off by at most the values of the one bucket holding ``value``)."""
        out = 0
        for index, n in self.counts.items():
            low, high = bucket_bounds(index, self.bits)
            if (low + high) / 2.0 > value:
                out += n
        return out

    def quantile(self, q: float) -> Optional[float]:
        """The value at quantile ``q`` (0..1): the middle of the bucket holding the
        recorded value of rank ``ceil(q * count)`` (numpy's ``inverted_cdf``), clamped
        to the exact minimum and maximum. None when empty."""
        if not self.count:
            return None
        assert self.min is not None and self.max is not None
        if q <= 0:
            return float(self.min)
        if q >= 1:
            return float(self.max)
        rank = max(1, int(math.ceil(q * self.count - 1e-9)))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                low, high = bucket_bounds(index, self.bits)
                middle = (low + high) / 2.0
                return float(min(max(middle, self.min), self.max))
        return float(self.max)  # pragma: no cover - counts add up to count

    def quantiles(self, qs: Iterable[float]) -> List[Optional[float]]:
        """Several quantiles in one pass over the buckets."""
        wanted = sorted((q, i) for i, q in enumerate(qs))
        out: List[Optional[float]] = [None] * len(wanted)
        if not self.count:
            return out
        assert self.min is not None and self.max is not None
        order = sorted(self.counts)
        pos, seen = 0, 0
        for q, i in wanted:
            if q <= 0:
                out[i] = float(self.min)
                continue
            if q >= 1:
                out[i] = float(self.max)
                continue
            rank = max(1, int(math.ceil(q * self.count - 1e-9)))
            while seen < rank and pos < len(order):
                seen += self.counts[order[pos]]
                pos += 1
            low, high = bucket_bounds(order[pos - 1], self.bits)
            out[i] = float(min(max((low + high) / 2.0, self.min), self.max))
        return out

    # ----------------------------------------------------------------------- JSON
    def to_json(self) -> dict:
        """Compact JSON: sorted bucket indices as deltas, and their counts.

        ``{"format": "hpctriton-hist-1", "bits": 8, "count": 3, "sum": 420, "min": 100,
        "max": 200, "index": [100, 20, 80], "counts": [1, 1, 1]}``
        """
        order = sorted(self.counts)
        deltas = []
        previous = 0
        for index in order:
            deltas.append(index - previous)
            previous = index
        return {"format": JSON_FORMAT, "bits": self.bits, "count": self.count,
                "sum": self.total, "min": self.min, "max": self.max,
                "index": deltas, "counts": [self.counts[i] for i in order]}

    @classmethod
    def from_json(cls, data: dict) -> "Histogram":
        if data.get("format") != JSON_FORMAT:
            raise ValueError("not a histogram of format {}: {!r}".format(
                JSON_FORMAT, data.get("format")))
        hist = cls(int(data["bits"]))
        index = 0
        for delta, n in zip(data["index"], data["counts"]):  # noqa: B905 - Python 3.8
            index += int(delta)
            hist.counts[index] = hist.counts.get(index, 0) + int(n)
        hist.count = int(data["count"])
        hist.total = int(data["sum"])
        hist.min = data.get("min")
        hist.max = data.get("max")
        if sum(hist.counts.values()) != hist.count:
            raise ValueError("histogram counts do not add up to its count")
        return hist

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, min={self.min}, max={self.max}, bits={self.bits})"


def merge_all(hists: Iterable[Histogram], bits: int = DEFAULT_BITS) -> Histogram:
    """One histogram holding everything in ``hists``."""
    out = Histogram(bits)
    for h in hists:
        out.merge(h)
    return out

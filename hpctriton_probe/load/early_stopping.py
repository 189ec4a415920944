"""How many requests a percentile claim needs: MLPerf LoadGen's early-stopping test.

A load point claims "p99 latency <= bound". Of its ``n`` requests, ``t`` were over the
bound. If the server's true share of requests over the bound were at least 1 - p, the
chance of seeing at most ``t`` of them in ``n`` requests is a binomial CDF; the claim
holds at confidence ``c`` when that chance is at most ``1 - c``. The smallest number of
requests under the bound that achieves it, ``h``, gives the rule: the point is valid
when ``n >= h + t``. With no request over the bound, a p99 claim at 99 % confidence
needs 459 requests.

Ported from MLPerf Inference LoadGen, ``loadgen/early_stopping.cc`` (mlcommons/inference,
Apache-2.0: ``odds``, ``beta_regularized``, ``hypergeometric_2F1_A1`` and
``find_min_passing``; used by ``PerformanceSummary::EarlyStopping`` in ``results.cc``
for the Server scenario with ``confidence = 0.99`` and ``tolerance = 0``). The figures
of ``tests/test_early_stopping.py`` come from that C++ code compiled and run.

Standard library only (the probe runs it inside the job).
"""

import math

#: LoadGen's confidence for early stopping.
CONFIDENCE = 0.99


def _lbeta(x: int, y: int) -> float:
    return math.lgamma(x) + math.lgamma(y) - math.lgamma(x + y)


def _hypergeometric_2f1_a1(b: int, c: int, x: float) -> float:
    """The Gaussian hypergeometric function 2F1(1, b; c; x) by its series (DLMF 15.2.1);
    converges for c > 0 and (b <= 0 or x < 1). LoadGen's tolerance: 2**-33."""
    tolerance = 1.0 / (1 << 33)
    term = 1.0
    result = 1.0
    i = 0
    while abs(term) > tolerance:
        term *= (b + i) * x / (c + i)
        result += term
        i += 1
    return result


def _beta_regularized(x: float, a: int, b: int) -> float:
    """I_x(a, b) = x^a (1-x)^(b-1) / (a B(a, b)) * 2F1(1, 1-b; 1+a; x/(x-1)) (DLMF 15.8.1)."""
    return (math.exp(a * math.log(x) + (b - 1) * math.log(1 - x) - _lbeta(a, b)) / a
            * _hypergeometric_2f1_a1(1 - b, 1 + a, x / (x - 1)))


def odds(under: int, over: int, percentile: float, tolerance: float = 0.0) -> float:
    """The chance of at most ``over`` requests over the bound among ``under + over``,
    were the true share over it ``1 - percentile + tolerance``."""
    return _beta_regularized(percentile - tolerance, under, 1 + over)


def min_requests_under(over: int, percentile: float, confidence: float = CONFIDENCE,
                       tolerance: float = 0.0) -> int:
    """The fewest requests under the bound (``h``) that make a claim with ``over``
    requests over it hold at ``confidence``: the smallest ``h`` with
    ``odds(h, over) <= 1 - confidence``.

    >>> min_requests_under(0, 0.99)
    459
    """
    if not 0.0 < percentile < 1.0:
        raise ValueError(f"percentile must be a share between 0 and 1, got {percentile}")
    if over < 0:
        raise ValueError(f"over must be >= 0, got {over}")
    limit = 1.0 - confidence
    low = max(1, math.ceil(math.log(limit) / math.log(percentile - tolerance)))
    # odds() falls as h grows: double until it passes, then bisect (LoadGen bounds its
    # binary search with the slope of earlier answers; the answer is the same)
    high = low
    while odds(high, over, percentile, tolerance) > limit:
        low, high = high + 1, high * 2
    while low < high:
        mid = (low + high) // 2
        if odds(mid, over, percentile, tolerance) <= limit:
            high = mid
        else:
            low = mid + 1
    return low


def min_requests(over: int, percentile: float, confidence: float = CONFIDENCE) -> int:
    """How many requests in all a point needs when ``over`` of them were over the bound:
    ``h + over`` (LoadGen's Server scenario: valid when ``queries_issued >= h + t``).

    >>> min_requests(0, 0.99), min_requests(3, 0.99)
    (459, 1001)
    """
    return min_requests_under(over, percentile, confidence) + over


def claim_holds(requests: int, over: int, percentile: float,
                confidence: float = CONFIDENCE) -> bool:
    """Whether ``requests`` requests with ``over`` over the bound support the claim
    "the ``percentile`` latency is within the bound" at ``confidence``."""
    return requests >= min_requests(over, percentile, confidence)

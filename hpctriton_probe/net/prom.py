"""A Prometheus endpoint: fetching its page and a small parser for the text exposition
format (version 0.0.4).

The probe may import nothing but the standard library, tritonclient and numpy, so it
cannot use ``prometheus_client``; the tests check this parser against
``prometheus_client.parser.text_string_to_metric_families``.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from typing import Dict, Iterator, List, NamedTuple, Optional

#: Sample-name suffixes that belong to the family of a given TYPE.
_SUFFIXES = {
    "counter": ("", "_total", "_created"),
    "gauge": ("",),
    "summary": ("", "_count", "_sum", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


class Sample(NamedTuple):
    name: str
    labels: Dict[str, str]
    value: float
    timestamp_ms: Optional[int] = None


class Family(NamedTuple):
    name: str
    type: str
    help: str
    samples: List[Sample]


class PromParseError(ValueError):
    """The text is not valid exposition format; says which line."""


class HTTPStatusError(Exception):
    """The metrics endpoint answered with an HTTP error status."""

    #: Read by ``calls.classify``: the server answered, wrongly.
    failure_kind = "server"

    def __init__(self, code: int, body: str) -> None:
        super().__init__(f"HTTP {code}: {body.strip()[:200]}")
        self.code = code


def fetch(url: str, headers: Optional[Dict[str, str]], timeout_s: float) -> str:
    """The text of the metrics page at ``url`` (plain HTTP: Triton's metrics port has no
    TLS). Raises ``HTTPStatusError`` or the socket's own error (refused, timeout, DNS),
    which ``calls.classify`` understands."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            text: str = response.read().decode("utf-8", "replace")
            return text
    except urllib.error.HTTPError as exc:
        raise HTTPStatusError(exc.code, exc.read().decode("utf-8", "replace")) from None
    except urllib.error.URLError as exc:
        # urllib wraps the socket error; classify the real one (refused, timeout, DNS).
        if isinstance(exc.reason, BaseException):
            raise exc.reason from None
        raise


def _unescape(text: str, quote: bool) -> str:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            n = text[i + 1]
            if n == "n":
                out.append("\n")
            elif n == "\\":
                out.append("\\")
            elif n == '"' and quote:
                out.append('"')
            else:
                out.append(c + n)
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_value(text: str) -> float:
    """A sample value: a float, ``+Inf``, ``-Inf`` or ``NaN``."""
    low = text.lower()
    if low in ("+inf", "inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    return float(text)


def _parse_labels(text: str, pos: int, lineno: int) -> tuple:
    """Labels from ``text[pos]`` (just after ``{``); returns (labels, position after ``}``)."""
    labels: dict = {}
    n = len(text)
    while True:
        while pos < n and text[pos] in " \t,":
            pos += 1
        if pos < n and text[pos] == "}":
            return labels, pos + 1
        eq = text.find("=", pos)
        if eq < 0:
            raise PromParseError(f"line {lineno}: label without '='")
        name = text[pos:eq].strip()
        if not name:
            raise PromParseError(f"line {lineno}: empty label name")
        pos = eq + 1
        while pos < n and text[pos] in " \t":
            pos += 1
        if pos >= n or text[pos] != '"':
            raise PromParseError(f"line {lineno}: label {name} value is not quoted")
        pos += 1
        start = pos
        while pos < n and text[pos] != '"':
            pos += 2 if text[pos] == "\\" else 1
        if pos >= n:
            raise PromParseError(f"line {lineno}: unterminated label value")
        if name in labels:
            raise PromParseError(f"line {lineno}: duplicate label {name}")
        labels[name] = _unescape(text[start:pos], quote=True)
        pos += 1


def _parse_sample(line: str, lineno: int) -> Sample:
    n = len(line)
    pos = 0
    while pos < n and line[pos] not in "{ \t":
        pos += 1
    name = line[:pos]
    if not name:
        raise PromParseError(f"line {lineno}: sample without a metric name")
    labels: dict = {}
    if pos < n and line[pos] == "{":
        labels, pos = _parse_labels(line, pos + 1, lineno)
    rest = line[pos:].split()
    if not rest or len(rest) > 2:
        raise PromParseError(f"line {lineno}: expected a value (and an optional "
                             f"timestamp): {line!r}")
    try:
        value = parse_value(rest[0])
        timestamp = int(rest[1]) if len(rest) == 2 else None
    except ValueError:
        raise PromParseError(f"line {lineno}: bad value or timestamp: {line!r}") from None
    return Sample(name, labels, value, timestamp)


def _family_of(sample_name: str, family: Family) -> bool:
    return any(sample_name == family.name + s for s in _SUFFIXES.get(family.type, ("",)))


def iter_families(text: str) -> Iterator[Family]:
    """Metric families in the order they appear.

    A sample that does not belong to the family announced by the last ``# TYPE`` or
    ``# HELP`` line starts an ``untyped`` family of its own.
    """
    current: Optional[Family] = None
    # "\n" ends a line, nothing else: str.splitlines() also splits at U+2028 and other
    # characters a label value may hold (found by the generated-text test)
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line[1:].strip().split(None, 2)
            if len(parts) < 2 or parts[0] not in ("HELP", "TYPE"):
                continue  # an ordinary comment
            kind, name = parts[0], parts[1]
            arg = parts[2] if len(parts) > 2 else ""
            if current is None or current.name != name:
                if current is not None:
                    yield current
                current = Family(name, "untyped", "", [])
            if kind == "HELP":
                current = current._replace(help=_unescape(arg, quote=False))
            else:
                if not arg:
                    raise PromParseError(f"line {lineno}: TYPE without a type")
                current = current._replace(type=arg.strip())
            continue
        sample = _parse_sample(line, lineno)
        if current is not None and _family_of(sample.name, current):
            current.samples.append(sample)
            continue
        if current is not None:
            yield current
        current = None
        yield Family(sample.name, "untyped", "", [sample])
    if current is not None:
        yield current


def parse(text: str) -> List[Family]:
    """All metric families of ``text`` as a list of ``Family``."""
    return list(iter_families(text))


def samples_by_name(families: List[Family]) -> Dict[str, List[Sample]]:
    """Sample name -> list of samples, across families."""
    out: Dict[str, List[Sample]] = {}
    for fam in families:
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out

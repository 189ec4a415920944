"""The probe's own Prometheus parser agrees with prometheus_client's."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpctriton_probe.net import prom

prometheus_parser = pytest.importorskip("prometheus_client.parser")

# Triton's own exposition, as in seed 002 plus a histogram, escapes and a timestamp.
TRITON_TEXT = """\
# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="mnist_cnn",version="1"} 395927.000000
# HELP nv_inference_request_failure Number of failed inference requests, all batch sizes
# TYPE nv_inference_request_failure counter
nv_inference_request_failure{model="mnist_cnn",version="1"} 0.000000
# HELP nv_inference_count Number of inferences performed (does not include cached requests)
# TYPE nv_inference_count counter
nv_inference_count{model="mnist_cnn",version="1"} 395927.000000
nv_inference_count{model="other",version="2"} 10
# HELP nv_inference_exec_count Number of model executions performed (no cached requests)
# TYPE nv_inference_exec_count counter
nv_inference_exec_count{model="mnist_cnn",version="1"} 193751.000000
# HELP nv_cpu_utilization CPU utilization rate [0.0 - 1.0]
# TYPE nv_cpu_utilization gauge
nv_cpu_utilization 0.25 1700000000000
# HELP lat Latency with a \\\\ backslash and a \\n newline in its help
# TYPE lat histogram
lat_bucket{model="a b",le="0.5"} 1
lat_bucket{model="a b",le="+Inf"} 3
lat_sum{model="a b"} 2.5
lat_count{model="a b"} 3
# a plain comment
weird{path="C:\\\\dir",quote="say \\"hi\\"",nl="a\\nb"} NaN
neg_inf -Inf
"""


def _normalize_ours(families: list) -> list:
    out = []
    for fam in families:
        samples = []
        for s in fam.samples:
            name = s.name
            if fam.type == "counter" and not name.endswith(("_total", "_created")):
                name += "_total"  # prometheus_client's OpenMetrics renaming of counters
            samples.append((name, dict(s.labels), s.value))
        fam_name = fam.name[:-6] if fam.type == "counter" and fam.name.endswith("_total") \
            else fam.name
        out.append((fam_name, "unknown" if fam.type == "untyped" else fam.type, fam.help,
                    samples))
    return out


def _normalize_theirs(text: str) -> list:
    out = []
    for fam in prometheus_parser.text_string_to_metric_families(text):
        out.append((fam.name, fam.type, fam.documentation,
                    [(s.name, dict(s.labels), s.value) for s in fam.samples]))
    return out


def _same(a: list, b: list) -> bool:
    def key(x: object) -> object:
        if isinstance(x, float) and math.isnan(x):
            return "NaN"
        if isinstance(x, (list, tuple)):
            return [key(i) for i in x]
        if isinstance(x, dict):
            return {k: key(v) for k, v in x.items()}
        return x
    return key(a) == key(b)


def test_parses_triton_metrics_like_prometheus_client() -> None:
    ours = _normalize_ours(prom.parse(TRITON_TEXT))
    theirs = _normalize_theirs(TRITON_TEXT)
    assert _same(ours, theirs), (ours, theirs)


def test_keeps_labels_values_and_timestamps_of_samples() -> None:
    by_name = prom.samples_by_name(prom.parse(TRITON_TEXT))
    (cpu,) = by_name["nv_cpu_utilization"]
    assert cpu.value == 0.25 and cpu.timestamp_ms == 1700000000000
    (weird,) = by_name["weird"]
    assert weird.labels == {"path": "C:\\dir", "quote": 'say "hi"', "nl": "a\nb"}
    assert math.isnan(weird.value)
    assert by_name["neg_inf"][0].value == -math.inf
    assert [s.labels["model"] for s in by_name["nv_inference_count"]] == ["mnist_cnn", "other"]


def test_rejects_text_that_is_not_exposition_format() -> None:
    with pytest.raises(prom.PromParseError, match="line 1"):
        prom.parse("nv_inference_count{model=unquoted} 1\n")
    with pytest.raises(prom.PromParseError, match="line 2"):
        prom.parse("ok 1\n<html>not metrics</html>\n")


_names = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
_label_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)  # "__x" is reserved
_label_values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) |
                        st.sampled_from(['"', "\\", "\n", "{", "}", ",", "="]), max_size=12)
_values = st.floats(allow_nan=False, allow_infinity=True, width=64) | st.integers(-10**9, 10**9)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_samples = st.lists(st.tuples(st.dictionaries(_label_names, _label_values, max_size=3), _values),
                    min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_names, st.sampled_from(["counter", "gauge", "untyped"]), _samples),
                min_size=1, max_size=5, unique_by=lambda f: f[0]))
def test_agrees_with_prometheus_client_on_generated_text(families: list) -> None:
    lines = []
    for name, typ, samples in families:
        lines.append(f"# HELP {name} help of {name}")
        if typ != "untyped":
            lines.append(f"# TYPE {name} {typ}")
        for labels, value in samples:
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{body}}} {value!r}" if body else f"{name} {value!r}")
    text = "\n".join(lines) + "\n"
    assert _same(_normalize_ours(prom.parse(text)), _normalize_theirs(text))


def test_a_label_value_with_a_unicode_line_separator_stays_on_its_line() -> None:
    """Only "\\n" ends a line of the exposition format (str.splitlines also split at
    U+2028, inside a quoted label value)."""
    (family,) = prom.parse('# TYPE m counter\nm{a="x\u2028y"} 2\n')
    assert family.samples[0].labels == {"a": "x\u2028y"} and family.samples[0].value == 2

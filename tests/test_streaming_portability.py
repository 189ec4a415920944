"""Decoupled models in every environment of the compat matrix: the infer check streams
``token_streamer`` over gRPC (tritonclient's stream, the final flag asked for as each
tritonclient allows) and HTTP generate_stream, and the load check streams it on the
probe's own HTTP/2 client, from worker processes too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_portability import compat, run_probe, server_of  # noqa: F401 - the fixture

from hpctriton.testing import TritonServer
from hpctriton.tools.compat import CompatTarget

pytestmark = pytest.mark.service

MODEL = "token_streamer"
#: How the end of a gRPC stream is known with each environment's tritonclient: the
#: argument where tritonclient has it, else the request parameter set by the probe.
FINAL_BY = {
    "py37-tc2.18": "request parameter triton_enable_empty_final_response",
    "py38-tc2.18": "request parameter triton_enable_empty_final_response",
    "py38-tc2.30": "request parameter triton_enable_empty_final_response",
    "py38-tc2.51": "enable_empty_final_response",
    "py311-tc2.51": "enable_empty_final_response",
    "newest": "enable_empty_final_response",
}
LOAD = {"warmup_s": 0.1, "window_s": 0.3, "stability": {"windows": 2, "percent": 50,
                                                         "max_trials": 2},
        "concurrency": [2], "workers": 2, "inputs": {"max_tokens": 5}}


def test_decoupled_model_streams_in_every_environment(triton: TritonServer, tmp_path: Path,
                                                      compat: tuple[CompatTarget, str]  # noqa: F811
                                                      ) -> None:
    entry, python = compat
    done, results, log = run_probe(tmp_path, python, server_of(triton),
                                    ["infer", {"load": LOAD}], models=[MODEL])
    assert results is not None, done.stdout + done.stderr
    checks = [e for e in results["checks"] if e["model"] == MODEL]
    shown = json.dumps(checks, indent=1)[:6000]
    infer = {e["protocol"]: e for e in checks if e["check"] == "infer"}
    assert {p: e["status"] for p, e in infer.items()} == {"grpc": "pass", "http": "pass"}, shown
    assert infer["grpc"]["details"]["final"] == FINAL_BY[entry.name], shown
    assert all(e["details"]["responses"] == 16 for e in infer.values()), shown
    if FINAL_BY[entry.name].startswith("request parameter"):
        assert any("triton_enable_empty_final_response" in w
                   for w in results["run"]["workarounds"]), results["run"]["workarounds"]
    (load,) = [e for e in checks if e["check"] == "load"]
    d = load["details"]
    assert load["status"] == "pass" and d["counts_match"] is True, shown
    assert d["tokens_per_request"]["max"] == 5 and d["ttft_ms"]["p50"] >= 20.0, shown
    assert d["client"]["workers"] == 2


def test_every_matrix_entry_says_how_its_streams_end() -> None:
    from hpctriton.tools.compat import MATRIX

    assert sorted(FINAL_BY) == sorted(t.name for t in MATRIX)

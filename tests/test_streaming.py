"""Streaming and decoupled models against the real Triton: the demo ``token_streamer``
(decoupled Python model: a 20 ms prefill, then one word per response every 5 ms, one
request at a time) through the infer check (gRPC ModelStreamInfer, HTTP
generate_stream) and the load check (closed and open loop, worker processes, prompts),
its mid-stream failure, and queueing above its capacity. Timings are asserted as
ranges that hold on a busy 2-core machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_triton import probe_task, server_success

from hpctriton.testing import TritonServer
from hpctriton_probe.runner import run_task

pytestmark = pytest.mark.service

MODEL = "token_streamer"
PREFILL_MS = 20.0  # config.pbtxt: prefill_s 0.02
TOKEN_MS = 5.0  # token_s 0.005
DEFAULT_TOKENS = 16  # default_max_tokens
FAST = {"warmup_s": 0.1, "window_s": 0.3, "stability": {"windows": 2, "percent": 50,
                                                         "max_trials": 3}}


def run(triton: TritonServer, tmp_path: Path, checks: list) -> dict:
    return run_task(probe_task(triton, models=[MODEL], checks=checks), str(tmp_path),
                    run_id="stream-test")


def entries(results: dict, check: str) -> list[dict]:
    return [e for e in results["checks"] if e["check"] == check and e["model"] == MODEL]


def data_file(tmp_path: Path, doc: dict) -> str:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(doc))
    return str(path)


# ------------------------------------------------------------------------- infer


def test_infer_streams_every_token_over_grpc_and_http(triton: TritonServer,
                                                     tmp_path: Path) -> None:
    results = run(triton, tmp_path, ["infer"])
    got = {e["protocol"]: e for e in entries(results, "infer")}
    assert set(got) == {"grpc", "http"}
    for protocol, e in got.items():
        d = e["details"]
        assert e["status"] == "pass", (protocol, e["message"])
        # the optional max_tokens is left out (not synthesized): the model's default
        assert d["optional_left_out"] == ["max_tokens", "fail_after"]
        assert d["responses"] == DEFAULT_TOKENS and len(d["itl_ms"]) == DEFAULT_TOKENS - 1
        assert d["ttft_ms"] >= PREFILL_MS
        assert sum(d["itl_ms"]) / len(d["itl_ms"]) >= 0.8 * TOKEN_MS
        assert d["e2e_ms"] >= PREFILL_MS + (DEFAULT_TOKENS - 1) * TOKEN_MS * 0.8
        assert d["outputs"][0]["preview"][:3] == ["hpctriton-0 ", "tok1 ", "tok2 "]
    assert got["grpc"]["details"]["endpoint"] == "ModelStreamInfer"
    assert got["grpc"]["details"]["final"] == "enable_empty_final_response"  # tc 2.51+
    assert got["http"]["details"]["endpoint"] == "generate_stream"


def test_infer_compares_each_response_with_its_expected_entry(triton: TritonServer,
                                                             tmp_path: Path) -> None:
    words = ["hello ", "world ", "tok2 "]
    doc = {"data": [{"text_input": ["hello world"], "max_tokens": [3]}],
           "validation_data": [{"text_output": [w]} for w in words]}
    results = run(triton, tmp_path, [("infer", {"input_data": data_file(tmp_path, doc)})])
    got = entries(results, "infer")
    assert [e["status"] for e in got] == ["pass", "pass"], [e["message"] for e in got]
    assert all("matched the expected outputs" in e["message"] for e in got)
    doc["validation_data"][1] = {"text_output": ["WORLD "]}
    results = run(triton, tmp_path / "bad", [("infer", {"input_data": data_file(tmp_path,
                                                                                  doc)})])
    got = entries(results, "infer")
    assert [e["status"] for e in got] == ["fail", "fail"]
    assert all("response 1: output text_output: 1 of 1 values differ" in e["message"]
               for e in got)


def test_infer_of_a_model_failing_mid_stream_is_a_fail_with_its_message(
        triton: TritonServer, tmp_path: Path) -> None:
    doc = {"data": [{"text_input": ["a b c"], "max_tokens": [6], "fail_after": [2]}]}
    results = run(triton, tmp_path, [("infer", {"input_data": data_file(tmp_path, doc)})])
    got = entries(results, "infer")
    assert [e["status"] for e in got] == ["fail", "fail"], [e["message"] for e in got]
    for e in got:
        assert "failing after 2 tokens, as asked (after 2 responses)" in e["message"]
        assert e["details"]["responses"] == 2 and e["details"]["failure"] == "server"


# -------------------------------------------------------------------------- load


def load_points(results: dict) -> list[dict]:
    return entries(results, "load")


@pytest.mark.parametrize("options", [
    {"concurrency": [1, 2]},
    {"request_rate": [15]},
    {"concurrency": [3], "workers": 2},
], ids=["closed", "open", "workers"])
def test_load_counts_exact_tokens_and_times_them(triton: TritonServer, tmp_path: Path,
                                                 options: dict) -> None:
    before = server_success(triton, MODEL)
    results = run(triton, tmp_path, [("load", {**FAST, **options, "inputs": {"max_tokens": 8},
                                               "slo": {"ttft_ms": 1000}})])
    after = server_success(triton, MODEL)
    got = load_points(results)
    assert got and all(e["status"] == "pass" for e in got), [e["message"] for e in got]
    assert sum(e["details"]["totals"]["ok"] for e in got) == after - before
    for e in got:
        d = e["details"]
        assert d["counts_match"] is True
        assert d["token_count"] == "elements" and d["token_output"] == "text_output"
        assert d["tokens_per_request"] == {"mean": 8.0, "p50": 8.0, "max": 8}
        assert round(d["output_tokens_per_s"] * d["duration_s"]) == 8 * d["requests"]
        assert d["requests_per_s"] == d["throughput_rps"] > 0
        assert d["ttft_ms"]["p50"] >= PREFILL_MS
        assert 0.8 * TOKEN_MS <= d["itl_ms"]["mean"] <= 5 * TOKEN_MS
        assert 0.8 * TOKEN_MS <= d["itl_ms"]["p50"] <= 5 * TOKEN_MS
        assert d["e2e_ms"]["p50"] >= PREFILL_MS + 7 * TOKEN_MS * 0.8
        assert d["e2e_ms"]["p50"] == d["latency_ms"]["p50"]
        assert d["slo"] == {"ttft_ms": 1000.0, "itl_ms": None, "e2e_ms": None}
        assert d["goodput_share"] == 1.0 and d["goodput_per_s"] == d["requests_per_s"]
        assert d["outputs_seen"] == ["text_output"]
    setup = [e for e in results["checks"] if e["check"] == "load" and e["model"] is None][0]
    assert setup["details"]["streams"] == {MODEL: {"token_count": "elements",
                                                   "token_output": "text_output"}}
    rank = json.loads((tmp_path / "load" / "rank-0.json").read_text())
    window = rank["loads"][0]["points"][0]["models"][MODEL]["windows"][0]
    assert {"ttft", "itl", "tokens", "out_tokens", "good"} <= set(window)


def test_load_from_prompts_counts_words(triton: TritonServer, tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"text": "one two three"}\n{"text": "four"}\n')
    results = run(triton, tmp_path, [("load", {**FAST, "concurrency": [1],
                                               "prompts": str(prompts),
                                               "inputs": {"max_tokens": 4},
                                               "token_count": "words"})])
    (e,) = load_points(results)
    assert e["status"] == "pass", e["message"]
    assert e["details"]["token_count"] == "words"
    assert e["details"]["tokens_per_request"]["max"] == 4  # one word per response
    setup = [x for x in results["checks"] if x["check"] == "load" and x["model"] is None][0]
    assert setup["details"]["models"][MODEL]["prompts"] == 2
    assert setup["details"]["models"][MODEL]["distinct_requests"] == 2


def test_load_of_a_model_failing_mid_stream_gives_error_entries(triton: TritonServer,
                                                               tmp_path: Path) -> None:
    before = server_success(triton, MODEL)
    results = run(triton, tmp_path, [("load", {**FAST, "concurrency": [2],
                                               "inputs": {"max_tokens": 6,
                                                          "fail_after": 3}})])
    after = server_success(triton, MODEL)
    assert all(e["status"] != "error" for e in results["checks"]), results["checks"]
    (e,) = load_points(results)
    d = e["details"]
    assert e["status"] == "fail" and d["totals"]["ok"] == 0
    assert d["errors_total"]["server"] == d["totals"]["sent"] > 0
    assert "failing after 3 tokens" in d["error_examples"]["server"]
    # Triton's Python backend counts a request that ended in an error a success
    assert after - before == d["totals"]["errors"] and d["counts_match"] is True


def test_open_loop_above_capacity_shows_queueing_in_ttft(triton: TritonServer,
                                                         tmp_path: Path) -> None:
    """One request at a time, 20 + 3 x 5 ms each: about 28 requests/s at most. At 5/s
    the first token comes after the prefill; at 60/s the requests queue and the time
    to first token, measured from the intended send time, grows through the window."""
    one_window = {"warmup_s": 0.0, "window_s": 0.8,
                  "stability": {"windows": 1, "max_trials": 1}, "inputs": {"max_tokens": 4}}
    low, high = load_points(run(triton, tmp_path, [("load", {
        **one_window, "request_rate": [5, 60]})]))
    lo, hi = low["details"], high["details"]
    assert low["status"] == high["status"] == "pass", [low["message"], high["message"]]
    assert lo["ttft_ms"]["p50"] < 6 * PREFILL_MS, lo["ttft_ms"]
    assert hi["ttft_ms"]["p99"] > 10 * PREFILL_MS, hi["ttft_ms"]
    assert hi["ttft_ms"]["p99"] > 4 * lo["ttft_ms"]["p99"]
    assert hi["send_lag_ms"]["p99"] < PREFILL_MS  # the client kept to its schedule
    assert hi["itl_ms"]["p50"] < 5 * TOKEN_MS  # once served, tokens come at their pace


def test_decoupled_model_over_http_load_is_an_error_not_an_ok(triton: TritonServer,
                                                            tmp_path: Path) -> None:
    results = run(triton, tmp_path, [("load", {**FAST, "protocol": "http",
                                               "concurrency": [1]})])
    (e,) = load_points(results)
    assert e["status"] == "error" and "use protocol: grpc" in e["message"]
    assert results["summary"]["ok"] is False

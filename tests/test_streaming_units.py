"""Streaming and decoupled models without a server: the stream answer parser, token
rules, prompts and inputs, the recorder's per-request figures, goodput, merging the
ranks' streaming histograms, the options, and the host's streaming points, figures
and comparison."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hpctriton.report.compare_text import shown_rows
from hpctriton.results.compare import compare_runs
from hpctriton.results.model import Results
from hpctriton.results.streaming import compare_stream_curves, stream_measures, stream_points
from hpctriton.runs.merge import merge_docs
from hpctriton_probe.load import inputs as inp
from hpctriton_probe.load import stats as loadstats
from hpctriton_probe.load import tokens as tok
from hpctriton_probe.load.generator import ModelRecorder, grpc_request
from hpctriton_probe.net.grpc_h2 import decoupled_reply
from hpctriton_probe.spec import LoadOptions, SpecError, from_dict

WINDOW_S = 1.0
WINDOWS = 3


def reply(rid: str, *, words: str | None = "tok1 ", final: bool = False, error: str = "",
          shape: tuple = (1,), more_outputs: int = 0, pad: int = 0) -> bytes:
    """A ``ModelStreamInferResponse`` as Triton writes it for a decoupled model."""
    from tritonclient.grpc import service_pb2

    msg = service_pb2.ModelStreamInferResponse()
    ir = msg.infer_response
    ir.model_name = "token_streamer" + "x" * pad
    ir.model_version = "1"
    ir.id = rid
    ir.parameters["triton_final_response"].bool_param = final
    if words is not None:
        for k in range(more_outputs):
            other = ir.outputs.add()
            other.name = f"logits{k}"
            other.datatype = "FP32"
            other.shape.extend([4])
            ir.raw_output_contents.append(b"\0" * 16)
        out = ir.outputs.add()
        out.name = "text_output"
        out.datatype = "BYTES"
        out.shape.extend(shape)
        raw = words.encode()
        ir.raw_output_contents.append(len(raw).to_bytes(4, "little") + raw)
    if error:
        msg.error_message = error
    return msg.SerializeToString()


# ------------------------------------------------------------------- the parser


@pytest.mark.parametrize(("rule", "tokens"), [(0, 1), (1, 2), (2, 3)])
def test_reply_gives_id_final_flag_and_tokens_by_each_rule(rule: int, tokens: int) -> None:
    got = decoupled_reply(reply("12", words="a b c", shape=(1, 2)), b"text_output", rule)
    assert got == (b"12", "", False, 1, tokens)


def test_empty_final_response_ends_the_request_without_a_token() -> None:
    for rule in (0, 1, 2):
        assert decoupled_reply(reply("7", words=None, final=True), None, rule) == (
            b"7", "", True, 0, 0)


def test_error_response_carries_its_message_and_request_id() -> None:
    rid, error, final, outputs, _ = decoupled_reply(
        reply("3", words=None, final=True, error="failing after 2 tokens"), None, 1)
    assert (rid, error, final, outputs) == (b"3", "failing after 2 tokens", True, 0)


def test_token_output_is_found_among_several_outputs_and_long_lengths() -> None:
    """The token output after two others, and a model name long enough that the
    message's lengths take two octets: the parser is not a fast path only."""
    message = reply("99", words="x y", shape=(3,), more_outputs=2, pad=200)
    assert decoupled_reply(message, b"text_output", 1) == (b"99", "", False, 3, 3)
    assert decoupled_reply(message, b"text_output", 2)[4] == 2
    assert decoupled_reply(message, None, 1)[4] == 4  # no name: the first output
    assert decoupled_reply(message, b"text_output", 0)[4] == 1


def test_a_truncated_reply_is_refused() -> None:
    with pytest.raises((ValueError, IndexError)):
        decoupled_reply(reply("1")[:-5], b"text_output", 1)


def test_decoupled_requests_ask_for_the_empty_final_response() -> None:
    from tritonclient.grpc import service_pb2

    arrays = [("text_input", "BYTES", np.array([b"hi"], dtype=np.object_))]
    request = service_pb2.ModelInferRequest.FromString(grpc_request("m", arrays, True))
    assert request.parameters["triton_enable_empty_final_response"].bool_param
    plain = service_pb2.ModelInferRequest.FromString(grpc_request("m", arrays))
    assert "triton_enable_empty_final_response" not in plain.parameters


# ------------------------------------------------------------------ tokens, inputs

META = {"inputs": [{"name": "text_input", "datatype": "BYTES", "shape": [1]},
                   {"name": "max_tokens", "datatype": "INT32", "shape": [1]}],
        "outputs": [{"name": "text_output", "datatype": "BYTES", "shape": [1]}]}


def test_prompts_are_read_from_jsonl_as_genai_perf_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"text": "hello world"}\n\n{"text": "second"}\n')
    assert tok.read_prompts(str(path)) == ["hello world", "second"]
    path.write_text('{"prompt": "x"}\n')
    with pytest.raises(inp.InputError, match="line 1"):
        tok.read_prompts(str(path))


def test_prompt_input_and_token_output_default_to_the_only_candidate() -> None:
    assert tok.prompt_input(META, None) == "text_input"
    with pytest.raises(inp.InputError, match="BYTES"):
        tok.prompt_input(META, "max_tokens")
    assert tok.token_output(META, None, "elements") == "text_output"
    assert tok.token_output(META, None, "responses") is None
    two = dict(META, outputs=META["outputs"] + [{"name": "ids", "datatype": "INT32",
                                                 "shape": [-1]}])
    with pytest.raises(inp.InputError, match="give token_output"):
        tok.token_output(two, None, "elements")
    with pytest.raises(inp.InputError, match="words splits text"):
        tok.token_output(two, "ids", "words")


def test_fixed_inputs_and_left_out_optional_inputs() -> None:
    prep = inp.prepare(META, 0, fixed={"text_input": "a prompt"}, optional=["max_tokens"])
    assert [n for n, _, _ in prep.arrays] == ["text_input"] and prep.left_out == ["max_tokens"]
    assert prep.arrays[0][2].tolist() == [b"a prompt"]
    prep = inp.prepare(META, 0, fixed={"max_tokens": 8}, optional=["max_tokens"])
    assert prep.arrays[1][2].tolist() == [8] and not prep.left_out
    with pytest.raises(inp.InputError, match="not an input"):
        inp.prepare(META, 0, fixed={"max_token": 8})


def test_generate_stream_takes_inputs_of_one_value_only() -> None:
    one = [("text_input", "BYTES", np.array([b"hi"], dtype=np.object_)),
           ("max_tokens", "INT32", np.array([3], dtype=np.int32))]
    assert tok.json_fields(one) == {"text_input": "hi", "max_tokens": 3}
    many = [("INPUT0", "INT32", np.arange(16, dtype=np.int32))]
    assert tok.json_fields(many) is None
    assert "16 elements" in tok.why_not_json(many)


def test_optional_inputs_come_from_the_model_config() -> None:
    config = {"config": {"input": [{"name": "a"}, {"name": "b", "optional": True}]}}
    assert tok.optional_inputs(config) == ["b"]
    assert tok.optional_inputs(config["config"]) == ["b"]


@pytest.mark.parametrize(("options", "error"), [
    ({"token_count": "chars"}, "token_count"),
    ({"slo": {}}, "slo"),  # the probe's parser names the field; the config says why
    ({"slo": {"ttft_ms": -1}}, "slo"),
    ({"prompts": "p.jsonl", "input_data": "d.json"}, "not both"),
])
def test_bad_streaming_options_are_refused(options: dict, error: str) -> None:
    with pytest.raises(SpecError, match=error):
        from_dict(LoadOptions, options)


# ------------------------------------------------------- recorder, figures, merging


def streamed(first: float, gaps: list[float], tokens: int) -> tok.StreamFigures:
    figures = tok.StreamFigures()
    t = first
    figures.response(t, 1)
    for gap in gaps:
        t += gap
        figures.response(t, 1)
    figures.tokens = tokens
    figures.end = t + 0.0005
    return figures


def stream_rank(rank: int, ranks: int, *, slo: list | None = None, seed: int = 0,
                n: int = 300) -> dict:
    """A rank document of a decoupled model from synthetic streamed answers."""
    rng = np.random.default_rng(seed)
    rec = ModelRecorder("token_streamer", 1, 0.0, WINDOW_S, WINDOWS, open_loop=False,
                        stream={"slo": slo})
    for t0 in rng.uniform(0, WINDOWS * WINDOW_S - 0.2, size=n).tolist():
        rec.sent += 1
        ttft = 0.02 + (0.03 if rng.random() < 0.25 else 0.0)
        rec.done(t0, 0.0, streamed(t0 + ttft, [0.005] * 7, 8))
    rec.sent += 1
    rec.done(0.5, 0.6, ("server", "stream", "failing after 2 tokens"))
    load = {"load_index": 0, "protocol": "grpc", "streaming": False, "mode": "concurrency",
            "schedule": "constant", "batch_size": 1, "warmup_s": 0.0, "window_s": WINDOW_S,
            "stability": {"windows": WINDOWS, "percent": 50.0, "max_trials": WINDOWS},
            "aligned": ranks > 1, "ranks": ranks, "models": ["token_streamer"],
            "interrupted": False,
            "streams": {"token_streamer": {"token_count": "elements",
                                           "token_output": "text_output"}},
            "points": [{"index": 0, "value": 2, "windows_run": WINDOWS, "stopped_early": False,
                        "late_s": 0.0, "client": {"cpu_s": 0.1, "wall_s": 3.0},
                        "models": {"token_streamer": rec.to_json(WINDOWS)}}]}
    if slo:
        load["slo"] = {"ttft_ms": 1000 * slo[0]}
    if rank == 0:
        load["points"][0]["server"] = {"token_streamer": {"success": 0, "fail": 0}}
    return {"format": loadstats.RANK_FORMAT, "rank": rank, "ranks": ranks, "host": f"n{rank}",
            "run_id": "r", "task": 0, "loads": [load]}


def test_a_point_of_a_decoupled_model_has_the_contract_fields() -> None:
    doc = stream_rank(0, 1, slo=[0.03, None, None], seed=1)
    answered = doc["loads"][0]["points"][0]["models"]["token_streamer"]["ok"]
    doc["loads"][0]["points"][0]["server"]["token_streamer"]["success"] = answered + 1
    load = doc["loads"][0]
    entry = loadstats.entries(load, load["points"][0])[0]
    d = entry["details"]
    assert set(loadstats.STREAM_KEYS) <= set(d)
    for key in ("ttft_ms", "itl_ms", "e2e_ms"):
        assert set(d[key]) == {"p50", "p90", "p95", "p99", "max", "mean"}
    assert d["ttft_ms"]["p50"] == pytest.approx(20.0, rel=0.01)
    assert d["ttft_ms"]["p99"] == pytest.approx(50.0, rel=0.01)
    assert d["itl_ms"]["p50"] == pytest.approx(5.0, rel=0.01)
    assert d["tokens_per_request"] == {"mean": 8.0, "p50": 8.0, "max": 8}
    assert d["output_tokens_per_s"] == pytest.approx(8 * d["requests_per_s"])
    assert d["requests_per_s"] == d["throughput_rps"]
    assert d["token_count"] == "elements" and d["token_output"] == "text_output"
    assert 0.6 < d["goodput_share"] < 0.9  # a quarter of the requests took 50 ms
    assert d["goodput_per_s"] == pytest.approx(d["goodput_share"] * d["requests_per_s"],
                                               rel=0.01)
    assert d["counts_match"] is True  # the server's successes count the failed stream too
    assert entry["status"] == "fail" and "failing after 2 tokens" in entry["message"]
    assert "TTFT p50 20" in entry["message"] and "goodput" in entry["message"]


def test_streaming_histograms_of_three_ranks_merge_exactly() -> None:
    docs = [stream_rank(r, 3, seed=20 + r) for r in range(3)]
    ok = sum(d["loads"][0]["points"][0]["models"]["token_streamer"]["ok"] for d in docs)
    report = merge_docs(json.loads(json.dumps(docs)))
    d = report["entries"][0]["details"]
    assert d["tasks"] == 3 and d["rank"] is None
    assert d["totals"]["ok"] == ok
    assert d["output_tokens_per_s"] == pytest.approx(8 * ok / (WINDOWS * WINDOW_S))
    merged = loadstats.merge_rank_docs(json.loads(json.dumps(docs)))
    windows = merged["loads"][0]["points"][0]["models"]["token_streamer"]["windows"]
    assert sum(w["out_tokens"] for w in windows) == 8 * ok
    assert sum(w["ttft"]["count"] for w in windows) == ok  # every rank's first tokens
    assert sum(w["itl"]["count"] for w in windows) == 7 * ok


def test_a_stream_without_tokens_fails_the_point() -> None:
    rec = ModelRecorder("m", 1, 0.0, WINDOW_S, 1, open_loop=False, stream={"slo": None})
    empty = tok.StreamFigures()
    empty.end = 0.5
    rec.sent = 1
    rec.done(0.4, 0.5, empty)
    doc = stream_rank(0, 1)
    load = doc["loads"][0]
    load["stability"] = {"windows": 1, "percent": 50.0, "max_trials": 1}
    load["points"][0]["models"] = {"token_streamer": rec.to_json(1)}
    entry = loadstats.entries(load, load["points"][0])[0]
    assert entry["status"] == "fail" and "no token" in entry["message"]


# ----------------------------------------------------------------- host: reports


def _results(tmp_path: Path, name: str, scale: float) -> Results:
    doc = stream_rank(0, 1, slo=[0.03, None, None], seed=5)
    load = doc["loads"][0]
    entries = []
    for k, value in enumerate((1, 2)):
        point = dict(load["points"][0], index=k, value=value)
        for entry in loadstats.entries(load, point):
            d = entry["details"]
            d["ttft_ms"] = {key: v * scale * value for key, v in d["ttft_ms"].items()}
            entries.append(entry)
    folder = tmp_path / name / "0"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "schema_version": 1,
        "run": {"run_id": name, "task": 0, "hostname": "h", "job_id": None,
                "array_job_id": None, "array_task_id": None, "started_at": "t",
                "ended_at": "t", "interrupted": False,
                "versions": {"probe": "1", "python": "3", "tritonclient": "2"},
                "checks_planned": ["load"]},
        "checks": entries, "summary": {"pass": 0, "fail": 2, "error": 0, "skip": 0,
                                       "total": 2, "ok": False}}))
    from hpctriton.results.source import resolve_source

    return resolve_source(tmp_path / name).results


def test_streaming_points_figure_and_comparison(tmp_path: Path) -> None:
    a = _results(tmp_path, "a", 1.0)
    b = _results(tmp_path, "b", 2.0)
    points = stream_points(a)
    assert [(p.model, p.load) for p in points] == [("token_streamer", 1.0),
                                                   ("token_streamer", 2.0)]
    assert points[1].ttft("p50") == pytest.approx(2 * points[0].ttft("p50"))
    assert points[0].output_tokens_per_s and points[0].goodput_share is not None
    metrics = {m.metric for m in stream_measures(a)}
    assert {"TTFT p50", "ITL p50", "output tokens/s", "goodput"} <= metrics
    cmp = compare_runs([a, b], labels=["a", "b"])
    row = cmp.get("TTFT p50", model="token_streamer", level="concurrency 1")
    assert row.diff(1) == pytest.approx(row.values[0])  # twice as long: +100 %
    assert row.judgement(1) == "worse"
    assert cmp.get("output tokens/s", level="concurrency 2").judgement(1) == "same"
    assert {r.metric for r in shown_rows(cmp)} >= {"TTFT p50", "ITL p50", "output tokens/s"}
    curves = compare_stream_curves([a, b])
    assert len(curves) == 1 and [len(p) for p in curves[0].points] == [2, 2]
    pytest.importorskip("matplotlib")
    from hpctriton.report.compare_html import comparison_html
    from hpctriton.report.html import html_report
    from hpctriton.report.stream_plots import compare_stream_figure, stream_figure

    assert len(stream_figure(points).axes) >= 3
    assert len(compare_stream_figure(curves, ["a", "b"]).axes) == 3
    page = html_report(a)
    assert "Streaming (decoupled models)" in page and "TTFT p50 ms" in page
    assert "Streaming (decoupled models)" in comparison_html(cmp)


def test_the_llm_example_renders_with_its_prompts_in_the_bundle(tmp_path: Path) -> None:
    from hpctriton.config import load_config
    from hpctriton.render.bundle import render_bundle

    config = load_config(Path(__file__).resolve().parent.parent / "examples"
                         / "llm-streaming.yaml")
    bundle = render_bundle(config, tmp_path / "bundle", cluster="asgc-slurm")
    spec = json.loads((bundle.path / "spec.json").read_text())
    load = next(c for c in spec["task"]["checks"] if c["name"] == "load")["options"]
    assert load["prompts"].startswith("files/") and load["tasks"] == 3
    assert (bundle.path / load["prompts"]).read_text().count('"text"') == 3
    assert load["slo"] == {"ttft_ms": 500.0, "itl_ms": 50.0, "e2e_ms": None}
    texts = tok.read_prompts(str(bundle.path / load["prompts"]))
    assert texts[0] == "What is the capital of France?"

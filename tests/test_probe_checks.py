"""Every check against a real Triton server, and how each reports trouble."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from fixtures_triton import probe_task, tcp_listener

from hpctriton.testing import TritonServer, free_port
from hpctriton_probe.runner import run_task

pytestmark = pytest.mark.service

DATA = os.path.join(os.path.dirname(__file__), "data")
ALL_TYPES_SHAPES = {"IN_FP32": [2, 4], "IN_BYTES": [5]}
HEALTHY = ["simple", "echo_bytes", "identity_all_types"]


def _by_key(results: dict) -> dict:
    return {(e["check"], e["protocol"], e["model"]): e for e in results["checks"]}


def _statuses(results: dict) -> set:
    return {e["status"] for e in results["checks"]}


def test_default_suite_passes_for_every_healthy_model(triton: TritonServer,
                                                      tmp_path: object) -> None:
    task = probe_task(triton, models=HEALTHY, checks=[
        "health", "metadata", "keepalive", ("infer", {"shapes": ALL_TYPES_SHAPES}),
        "statistics", "metrics"])
    results = run_task(task, str(tmp_path), run_id="t")
    bad = [e for e in results["checks"] if e["status"] != "pass"]
    assert not bad, json.dumps(bad, indent=1)
    keys = set(_by_key(results))
    for protocol in ("http", "grpc"):
        for check in ("health", "metadata"):
            assert (check, protocol, None) in keys
        for check in ("health", "metadata", "infer", "statistics"):
            assert {(check, protocol, m) for m in HEALTHY} <= keys
    assert ("keepalive", "grpc", None) in keys
    assert {("metrics", "http", m) for m in HEALTHY} <= keys
    # statistics and metrics come last, after the other checks they measure
    last = 2 * len(HEALTHY) + 1 + len(HEALTHY)
    assert [e["check"] for e in results["checks"]][-last:] == \
        ["statistics"] * 2 * len(HEALTHY) + ["metrics"] * (1 + len(HEALTHY))
    assert "during_run" in results["checks"][-1]["details"]
    with open(os.path.join(str(tmp_path), "results.json")) as fh:
        assert json.load(fh)["checks"] == json.loads(json.dumps(results["checks"]))
    assert results["summary"]["ok"] and results["run"]["ended_at"]


def test_health_and_metadata_details_say_what_the_server_is(triton: TritonServer) -> None:
    results = run_task(probe_task(triton, checks=["health", "metadata"]))
    by = _by_key(results)
    for protocol in ("http", "grpc"):
        assert by[("health", protocol, None)]["details"]["live"] is True
        meta = by[("metadata", protocol, None)]["details"]
        assert meta["name"] == "triton" and meta["version"] and "statistics" in meta["extensions"]
        model = by[("metadata", protocol, "simple")]["details"]
        assert [i["shape"] for i in model["inputs"]] == [[-1, 16], [-1, 16]]
        assert model["config"]["max_batch_size"] == 8 and model["config"]["dynamic_batching"]


def test_dead_server_fails_in_seconds_not_at_the_timeout() -> None:
    task = probe_task(http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(),
                      probe={"timeout_s": 30, "retries": 2, "retry_backoff_s": 0.2})
    started = time.monotonic()
    results = run_task(task)  # the whole default suite
    elapsed = time.monotonic() - started
    assert elapsed < 5, elapsed
    assert _statuses(results) == {"fail"}
    assert all(e["details"]["failure"] == "refused" for e in results["checks"])


def test_refusal_is_retried_with_backoff_once_per_endpoint() -> None:
    task = probe_task(http_port=free_port(), grpc_port=free_port(), checks=["health"],
                      probe={"retries": 2, "retry_backoff_s": 0.2})
    by = _by_key(run_task(task))
    for protocol in ("http", "grpc"):
        first = by[("health", protocol, None)]
        assert first["message"].startswith(f"connection refused by {protocol}://127.0.0.1:")
        assert first["details"]["attempts"] == 3 and first["duration_s"] >= 0.55
        later = by[("health", protocol, "simple")]
        assert later["details"]["attempts"] == 1 and later["duration_s"] < 0.2
        assert "not retried: it refused all 3 attempts earlier" in later["message"]


def test_silent_port_fails_at_the_timeout_and_never_hangs(silent_port: int) -> None:
    task = probe_task(http_port=silent_port, grpc_port=silent_port,
                      models=["simple", "echo_bytes"], checks=["health"],
                      probe={"timeout_s": 1.0})
    started = time.monotonic()
    results = run_task(task)
    elapsed = time.monotonic() - started
    assert _statuses(results) == {"fail"}
    by = _by_key(results)
    for protocol in ("http", "grpc"):
        endpoint = f"{protocol}://127.0.0.1:{silent_port}"
        first = by[("health", protocol, None)]
        assert first["details"]["failure"] == "timeout"
        assert first["message"] == (f"no answer from {endpoint} within 1 s (first contact, "
                                    "before the checks)")
        later = by[("health", protocol, "echo_bytes")]
        assert later["message"].startswith(f"not tried: {endpoint} not answering since the "
                                           "health check")
        assert later["duration_s"] < 0.5
    assert sorted(results["run"]["first_contact"]["silent"]) == [
        f"grpc://127.0.0.1:{silent_port}", f"http://127.0.0.1:{silent_port}"]
    assert elapsed < 1 + 5, elapsed


def test_the_default_suite_against_a_silent_server_ends_within_the_timeout_plus_5_s(
        silent_port: int) -> None:
    """Issue 12: 71 s with a 10 s timeout, of which 20 s in no check (the statistics'
    snapshot before the checks). Now every endpoint is asked at once, and every check
    after the first fails at once, saying since when."""
    task = probe_task(http_port=silent_port, grpc_port=silent_port, metrics_port=silent_port,
                      probe={"timeout_s": 3.0})
    started = time.monotonic()
    results = run_task(task)
    elapsed = time.monotonic() - started
    assert elapsed < 3 + 5, elapsed
    assert _statuses(results) == {"fail"}
    assert {e["check"] for e in results["checks"]} == {
        "health", "metadata", "keepalive", "infer", "statistics", "metrics"}
    assert all(e["details"]["failure"] == "timeout" for e in results["checks"])
    firsts = [e for e in results["checks"] if e["message"].startswith("no answer from")]
    assert sorted(e["message"].split()[3] for e in firsts) == sorted(
        f"{kind}://127.0.0.1:{silent_port}" for kind in ("http", "grpc", "metrics"))
    for e in results["checks"]:
        if e not in firsts:
            assert "not answering since the health check" in e["message"], e


@pytest.fixture()
def answers_once() -> Iterator[int]:
    """An HTTP port that answers its first connection (a health check from a load
    balancer, say) and then accepts and never answers: a server that hangs."""

    def first_only(conn: socket.socket, n: int) -> None:
        if n == 0:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    with tcp_listener(first_only) as port:
        yield port


def test_after_a_call_times_out_later_calls_in_every_check_fail_at_once(
        answers_once: int) -> None:
    task = probe_task(http_port=answers_once, models=["simple"],
                      checks=[("health", {"protocols": ["http"]}),
                              ("metadata", {"protocols": ["http"]}),
                              ("statistics", {"protocols": ["http"]})],
                      probe={"timeout_s": 1.0})
    started = time.monotonic()
    results = run_task(task)
    elapsed = time.monotonic() - started
    endpoint = f"http://127.0.0.1:{answers_once}"
    assert results["run"]["first_contact"]["silent"] == []  # it answered then
    by = _by_key(results)
    # the statistics' snapshot before the checks is the first call that waits
    snapshot_wait = by[("statistics", "http", "simple")]
    assert snapshot_wait["message"] == (f"not tried: {endpoint} not answering since the "
                                        "statistics check (no answer to statistics within 1 s)")
    for key in (("health", "http", None), ("health", "http", "simple"),
                ("metadata", "http", None), ("metadata", "http", "simple")):
        assert by[key]["status"] == "fail" and by[key]["duration_s"] < 0.5, by[key]
        assert "not answering since the statistics check" in by[key]["message"]
    assert elapsed < 1 + 3, elapsed


def test_metrics_without_any_nv_family_fail(triton: TritonServer) -> None:
    """Issue 18: a path that answers 200 with an empty body passed ("0 metric families
    scraped"). A page without Triton's nv_* families is not Triton's metrics."""
    import http.server

    class Empty(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            body = b"" if self.path == "/empty" else b"# TYPE other_total counter\nother_total 1\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Empty)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for path, families in (("/empty", 0), ("/other", 1)):
            task = probe_task(triton, checks=[("metrics", {"path": path})],
                              metrics_port=server.server_address[1])
            by = _by_key(run_task(task))
            entry = by[("metrics", "http", None)]
            assert entry["status"] == "fail", entry
            assert entry["message"].startswith(f"no nv_* metric family among the {families} "
                                               "scraped")
            assert by[("metrics", "http", "simple")]["status"] == "fail"
        real = _by_key(run_task(probe_task(triton, checks=["metrics"])))
        assert real[("metrics", "http", None)]["status"] == "pass"
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_model_fails_with_tritons_own_message(triton: TritonServer) -> None:
    results = run_task(probe_task(triton, models=["no_such_model"],
                                  checks=["health", "metadata", "infer", "statistics"]))
    by = _by_key(results)
    for protocol in ("http", "grpc"):
        for check in ("metadata", "infer"):
            entry = by[(check, protocol, "no_such_model")]
            assert entry["status"] == "fail"
            assert entry["message"] == "Request for unknown model: 'no_such_model' is not found"
        stats = by[("statistics", protocol, "no_such_model")]
        assert stats["status"] == "fail"
        assert stats["message"] == "requested model 'no_such_model' is not available"
        health = by[("health", protocol, "no_such_model")]
        assert health["status"] == "fail" and health["message"].startswith("model not ready")
    assert by[("metadata", "http", "no_such_model")]["details"]["status_code"] == "404"


def test_failing_model_fails_inference_with_the_models_error(triton: TritonServer) -> None:
    results = run_task(probe_task(triton, models=["failing"],
                                  checks=["health", "infer", "statistics"]))
    by = _by_key(results)
    for protocol in ("http", "grpc"):
        assert by[("health", protocol, "failing")]["status"] == "pass"
        infer = by[("infer", protocol, "failing")]
        assert infer["status"] == "fail"
        assert infer["message"].startswith("Failed to process the request(s) for model")
        assert infer["message"].endswith("failing: this model fails every request on purpose")
        assert "model.py" in infer["details"]["server_message"]  # the model's traceback
        stats = by[("statistics", protocol, "failing")]
        assert stats["details"]["delta"]["fail"] == 2  # one request per protocol
        assert stats["message"].startswith("+0 ok, +2 failed")


def test_slow_model_fails_at_the_timeout_and_other_models_still_run(
        triton: TritonServer) -> None:
    task = probe_task(triton, models=["slow", "simple"],
                      checks=[("infer", {"timeout_s": 0.2})], probe={"timeout_s": 10})
    results = run_task(task)
    by = _by_key(results)
    for protocol in ("http", "grpc"):
        slow = by[("infer", protocol, "slow")]
        assert slow["status"] == "fail" and slow["details"]["failure"] == "timeout"
        assert 0.15 < slow["duration_s"] < 2, slow
        assert "within 0.2 s (inference)" in slow["message"]
        assert by[("infer", protocol, "simple")]["status"] == "pass"


def test_input_data_file_is_sent_and_expected_outputs_match(triton: TritonServer) -> None:
    task = probe_task(triton, checks=[("infer", {
        "input_data": "simple_input_data.json", "expected_outputs": "simple_expected.json"})])
    results = run_task(task, base_dir=DATA)
    for entry in results["checks"]:
        assert entry["status"] == "pass", entry
        assert entry["details"]["input_source"].endswith("simple_input_data.json")
        assert [c["status"] for c in entry["details"]["compared"]] == ["match", "match"]
        assert entry["details"]["outputs"][0]["preview"] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert "OUTPUT0, OUTPUT1 matched expected values" in entry["message"]


def test_expected_outputs_that_differ_fail_with_the_differing_values(
        triton: TritonServer) -> None:
    task = probe_task(triton, checks=[("infer", {
        "input_data": {"simple": "simple_input_data.json"},
        "expected_outputs": {"simple": "simple_expected_wrong.json"}})])
    results = run_task(task, base_dir=DATA)
    for entry in results["checks"]:
        assert entry["status"] == "fail"
        assert entry["message"] == "output OUTPUT0: 1 of 16 values differ"
        (bad,) = [c for c in entry["details"]["compared"] if c["status"] != "match"]
        assert bad["first"] == [{"index": [0, 5], "expected": 999, "got": 6}]


def test_validation_data_in_the_input_file_is_checked_for_a_whole_batch(
        triton: TritonServer) -> None:
    task = probe_task(triton, checks=[("infer", {
        "input_data": "simple_input_data_variants.json", "batch_size": 4})])
    results = run_task(task, base_dir=DATA)
    for entry in results["checks"]:
        assert entry["status"] == "pass", entry
        assert entry["details"]["inputs"][0]["shape"] == [4, 16]
        assert entry["details"]["expected_source"].endswith("validation_data")


def test_a_bad_input_file_is_an_error_of_the_probe_not_a_failure(triton: TritonServer,
                                                                  tmp_path: object) -> None:
    path = os.path.join(str(tmp_path), "short.json")
    with open(path, "w") as fh:
        json.dump({"data": [{"INPUT0": [1, 2, 3], "INPUT1": [1]}]}, fh)
    results = run_task(probe_task(triton, checks=[("infer", {"input_data": path})]))
    for entry in results["checks"]:
        assert entry["status"] == "error"
        assert "3 values do not fill shape [16]" in entry["message"]


def _all_types_data() -> tuple:
    """Inputs of every datatype and, since the model is the identity, the same as
    expected outputs (perf_analyzer layout)."""
    values = {"BOOL": [True, False, True], "INT8": [-128, 0, 127], "INT16": [-32768, 1, 32767],
              "INT32": [-2**31, 2, 2**31 - 1], "INT64": [-2**63, 3, 2**63 - 1],
              "UINT8": [0, 1, 255], "UINT16": [0, 2, 65535], "UINT32": [0, 3, 2**32 - 1],
              "UINT64": [0, 4, 2**64 - 1], "FP16": [-1.5, 0.0, 65504.0],
              "FP32": {"content": [0.5, -1.25, 3.0, 1e30, -1e-30, 7.0], "shape": [2, 3]},
              "FP64": [1e300, -2.5, 1e-300], "BF16": [1.5, -2.0, 256.0],
              "BYTES": {"content": ["a", "", "\u00fcnic\u00f6de", "x" * 40], "shape": [4]}}
    data = {f"IN_{k}": v for k, v in values.items()}
    expected = {f"OUT_{k}": v for k, v in values.items()}
    return data, expected


def test_every_datatype_round_trips_through_a_real_model(triton: TritonServer,
                                                         tmp_path: object) -> None:
    data, expected = _all_types_data()
    path = os.path.join(str(tmp_path), "all_types.json")
    with open(path, "w") as fh:
        json.dump({"data": [data], "validation_data": [expected]}, fh)
    task = probe_task(triton, models=["identity_all_types"],
                      checks=[("infer", {"input_data": path, "batch_size": 2})])
    results = run_task(task)
    for entry in results["checks"]:
        assert entry["status"] == "pass", json.dumps(entry, indent=1)
        outputs = {o["name"]: o for o in entry["details"]["outputs"]}
        assert set(outputs) == {f"OUT_{t}" for t in ("BOOL", "INT8", "INT16", "INT32", "INT64",
                                                     "UINT8", "UINT16", "UINT32", "UINT64",
                                                     "FP16", "FP32", "FP64", "BF16", "BYTES")}
        assert outputs["OUT_BF16"]["datatype"] == "BF16"
        assert outputs["OUT_FP32"]["shape"] == [2, 2, 3]
        assert outputs["OUT_BYTES"]["preview"][:3] == ["a", "", "\u00fcnic\u00f6de"]
        assert all(c["status"] == "match" for c in entry["details"]["compared"])


def test_synthesized_inputs_of_every_datatype_are_served(triton: TritonServer) -> None:
    task = probe_task(triton, models=["identity_all_types"],
                      checks=[("infer", {"batch_size": 3, "shapes": ALL_TYPES_SHAPES})])
    for entry in run_task(task)["checks"]:
        assert entry["status"] == "pass", entry
        shapes = {i["name"]: i["shape"] for i in entry["details"]["inputs"]}
        assert shapes["IN_FP32"] == [3, 2, 4] and shapes["IN_BYTES"] == [3, 5]
        assert shapes["IN_BF16"] == [3, 3]


def test_keepalive_reports_settings_and_spreads_calls_over_the_period(
        triton: TritonServer) -> None:
    options = {"keepalive_time_s": 1.5, "keepalive_timeout_s": 4, "permit_without_calls": True,
               "max_pings_without_data": 0, "calls": 3, "period_s": 0.6}
    (entry,) = run_task(probe_task(triton, checks=[("keepalive", options)]))["checks"]
    assert entry["status"] == "pass", entry
    details = entry["details"]
    assert details["settings"] == {"keepalive_time_ms": 1500, "keepalive_timeout_ms": 4000,
                                   "keepalive_permit_without_calls": True,
                                   "http2_max_pings_without_data": 0}
    assert details["succeeded"] == 3 and len(details["latencies_ms"]) == 3
    assert details["healthy"] is True and "READY" in details["channel_states"]
    assert entry["duration_s"] >= 0.6 and details["interval_s"] == 0.3


def test_keepalive_calls_go_back_to_back_by_default(triton: TritonServer) -> None:
    (entry,) = run_task(probe_task(triton, checks=["keepalive"]))["checks"]
    assert entry["status"] == "pass" and entry["duration_s"] < 0.5
    assert entry["details"]["calls"] == 3 and entry["details"]["period_s"] == 0


def test_statistics_show_what_the_run_did(triton: TritonServer) -> None:
    results = run_task(probe_task(triton, models=["echo_bytes"],
                                  checks=["statistics", "infer"]))
    assert [e["check"] for e in results["checks"]] == ["infer", "infer", "statistics",
                                                       "statistics"]
    for entry in results["checks"][2:]:
        delta = entry["details"]["delta"]
        assert entry["status"] == "pass"
        assert (delta["success"], delta["fail"]) == (2, 0)  # one inference per protocol
        assert delta["compute_infer_avg_ms"] > 0
        assert entry["details"]["after"]["success_count"] >= 2


def test_metrics_show_the_batching_ratio_of_dynamic_batching(triton: TritonServer) -> None:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(triton.grpc_url)
    done = threading.Semaphore(0)
    ones = np.ones((1, 16), dtype=np.int32)
    for _ in range(32):
        inputs = [grpcclient.InferInput(n, [1, 16], "INT32") for n in ("INPUT0", "INPUT1")]
        for i in inputs:
            i.set_data_from_numpy(ones)
        client.async_infer("simple", inputs, callback=lambda result, error: done.release())
    for _ in range(32):
        assert done.acquire(timeout=30)
    client.close()
    results = run_task(probe_task(triton, checks=["metrics"]))
    by = _by_key(results)
    entry = by[("metrics", "http", "simple")]
    assert entry["status"] == "pass"
    values = entry["details"]["values"]
    assert values["nv_inference_count"] >= 32
    assert entry["details"]["batching_ratio"] == round(
        values["nv_inference_count"] / values["nv_inference_exec_count"], 4)
    assert entry["details"]["batching_ratio"] > 1, values
    # the 32 came before the run: the totals' ratio, as context after the run's own
    assert entry["message"].endswith(f"ratio {entry['details']['batching_ratio']:.2f}")
    assert by[("metrics", "http", None)]["details"]["families"] > 5


def _infer_simple(triton: TritonServer, n: int) -> None:
    """``n`` inferences of ``simple`` from outside the probe (another client)."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(triton.http_url)
    ones = np.ones((1, 16), dtype=np.int32)
    try:
        for _ in range(n):
            inputs = [httpclient.InferInput(name, [1, 16], "INT32") for name in
                      ("INPUT0", "INPUT1")]
            for i in inputs:
                i.set_data_from_numpy(ones)
            client.infer("simple", inputs)
    finally:
        client.close()


def test_metrics_report_the_runs_own_difference_with_the_totals_as_context(
        triton: TritonServer) -> None:
    """Issue 16.8: the metrics check reported counters since the server started ("34408
    ok … batching ratio 2.41") beside statistics' "+2 ok during the run"."""
    _infer_simple(triton, 5)  # traffic before the run: in the totals, not the difference
    results = run_task(probe_task(triton, checks=["metrics", "infer", "statistics"]))
    checks = [e["check"] for e in results["checks"]]
    assert checks.index("metrics") > max(i for i, c in enumerate(checks) if c == "infer")
    by = _by_key(results)
    infers = [e for e in results["checks"] if e["check"] == "infer"]
    assert [e["status"] for e in infers] == ["pass", "pass"]  # one inference per protocol
    entry = by[("metrics", "http", "simple")]
    assert entry["status"] == "pass", entry
    during = entry["details"]["during_run"]["values"]
    assert during["nv_inference_request_success"] == len(infers) == 2
    assert during["nv_inference_request_failure"] == 0
    assert during["nv_inference_count"] == 2
    # the statistics check's difference over the same run says the same
    stats = [by[("statistics", p, "simple")]["details"]["delta"] for p in ("http", "grpc")]
    assert {d["success"] for d in stats} == {2}
    totals = entry["details"]["values"]
    assert totals["nv_inference_request_success"] >= 2 + 5
    assert "nv_inference_pending_request_count" not in during  # a gauge, not a counter
    assert entry["details"]["during_run"]["batching_ratio"] == round(
        during["nv_inference_count"] / during["nv_inference_exec_count"], 4)
    assert entry["message"] == (
        "+2 ok, +0 failed during the run, batching ratio {:.2f}; since start {} ok, 0 "
        "failed, ratio {:.2f}".format(during["nv_inference_count"]
                                      / during["nv_inference_exec_count"],
                                      totals["nv_inference_request_success"],
                                      entry["details"]["batching_ratio"]))


def test_metrics_of_a_run_that_infers_nothing_show_no_difference(
        triton: TritonServer) -> None:
    _infer_simple(triton, 3)
    entry = _by_key(run_task(probe_task(triton, checks=["metrics"])))[
        ("metrics", "http", "simple")]
    during = entry["details"]["during_run"]
    assert during["values"]["nv_inference_request_success"] == 0
    assert during["batching_ratio"] is None
    assert entry["details"]["values"]["nv_inference_request_success"] >= 3
    assert entry["message"].startswith("+0 ok, +0 failed during the run; since start ")


def test_counters_that_went_down_give_no_difference() -> None:
    """A server restarted between the two scrapes: no difference, the reason instead."""
    from hpctriton_probe.checks.metrics import model_entry
    from hpctriton_probe.net.answers import counters_delta

    assert counters_delta({"a": 5, "b": 1.5}, {"a": 7, "b": 2.0}) == {"a": 2, "b": 0.5}
    assert counters_delta({"a": 5}, {"a": 2}) is None
    values = {"nv_inference_request_success": 2, "nv_inference_count": 2,
              "nv_inference_exec_count": 2}
    message, details = model_entry(values, values, {"nv_inference_request_success": 9})
    assert "during_run" not in details and "restarted" in details["before_error"]
    assert message.startswith("2 ok, 0 failed, 2 inferences in 2 executions")
    message, details = model_entry(values, values, "metrics scrape timed out")
    assert details["before_error"] == "metrics scrape timed out"
    assert message.endswith("since the server started (no scrape before the run)")


def test_metrics_without_a_port_are_skipped_with_the_reason(triton: TritonServer) -> None:
    task = probe_task(triton, checks=["metrics"])
    task.server.metrics_port = None
    (entry,) = run_task(task)["checks"]
    assert entry["status"] == "skip" and "no server.metrics_port" in entry["message"]


def test_a_protocol_without_a_port_is_skipped(triton: TritonServer) -> None:
    task = probe_task(triton, checks=["health", "keepalive"])
    task.server.grpc_port = None
    results = run_task(task)
    by = _by_key(results)
    assert by[("health", "grpc", None)]["status"] == "skip"
    assert by[("keepalive", "grpc", None)]["message"] == "no server.grpc_port configured"
    assert by[("health", "http", "simple")]["status"] == "pass"
    assert results["summary"]["ok"]


def test_a_sequence_model_gets_a_sequence_of_its_own(triton: TritonServer) -> None:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    plain = grpcclient.InferInput("INPUT0", [1, 1], "INT32")
    plain.set_data_from_numpy(np.ones((1, 1), dtype=np.int32))
    with pytest.raises(InferenceServerException, match="correlation ID"):
        grpcclient.InferenceServerClient(triton.grpc_url).infer("sequence_echo", [plain])
    results = run_task(probe_task(triton, models=["sequence_echo"], checks=["infer"]))
    for entry in results["checks"]:
        assert entry["status"] == "pass", entry
        assert entry["details"]["sequence_id"] > 0


def test_hpctriton_check_against_a_silent_server_ends_within_the_timeout_plus_5_s(
        silent_port: int) -> None:
    """The issue's own command: 71 s with the default 10 s timeout (here 3 s)."""
    from click.testing import CliRunner

    from hpctriton.cli import cli

    url = f"127.0.0.1:{silent_port}"
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["check", "--http-url", url, "--grpc-url", url,
                                      "--metrics-url", url, "--model", "simple",
                                      "--set", "probe.timeout_s=3"])
    elapsed = time.monotonic() - started
    assert result.exit_code == 1, result.output
    assert elapsed < 3 + 5, elapsed
    assert f"no answer from http://{url} within 3 s" in result.output
    assert "not answering since the health check" in result.output

"""What the probe does where the installed tritonclient lacks a feature.

The matrix in tests/test_portability.py runs real old releases; the releases it can
install all have BF16, every KeepAliveOptions field and the aio clients, so the skip
paths for a client without them are driven here, in this venv, by taking the feature
away from the real tritonclient (monkeypatch) and running the checks against the real
test server.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from fixtures_triton import probe_task

from hpctriton.testing import TritonServer
from hpctriton_probe.net import features
from hpctriton_probe.net.calls import classify
from hpctriton_probe.runner import run_task


def _by_key(results: dict) -> dict:
    return {(e["check"], e["protocol"], e["model"]): e for e in results["checks"]}


# --------------------------------------------------------------- gRPC deadlines


class _OldStyleClient:
    """Shaped like tritonclient 2.30's gRPC client: no ``client_timeout`` except on infer."""

    def __init__(self, url: str) -> None:
        import grpc
        from tritonclient.grpc import service_pb2_grpc

        self._channel = grpc.insecure_channel(url)
        self._client_stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        self.calls = 0

    def is_server_live(self, headers: Any = None) -> bool:
        import grpc
        from tritonclient.grpc import service_pb2
        from tritonclient.grpc._utils import raise_error_grpc  # noqa: PLC2701 - the real client's own helper

        self.calls += 1
        try:
            return self._client_stub.ServerLive(request=service_pb2.ServerLiveRequest(),
                                                metadata=tuple((headers or {}).items())).live
        except grpc.RpcError as rpc_error:
            raise_error_grpc(rpc_error)
            raise  # not reached: raise_error_grpc raises

    def infer(self, model_name: str, inputs: list, client_timeout: Any = None) -> str:
        return f"native {client_timeout}"

    def close(self) -> None:
        self._channel.close()


def test_an_old_grpc_client_is_wrapped_and_a_new_one_is_not() -> None:
    import tritonclient.grpc

    assert features.GrpcDeadlines.needed(_OldStyleClient.__new__(_OldStyleClient))
    new = tritonclient.grpc.InferenceServerClient("127.0.0.1:1")
    try:
        assert not features.GrpcDeadlines.needed(new)
    finally:
        new.close()


def test_the_interceptor_puts_the_timeout_on_a_call_to_a_silent_server(
        silent_port: int) -> None:
    client = features.GrpcDeadlines(_OldStyleClient(f"127.0.0.1:{silent_port}"))
    assert client.mode == "interceptor"
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        client.is_server_live(client_timeout=0.5)
    assert 0.4 <= time.monotonic() - started < 2
    assert classify(caught.value)[0] == "timeout", caught.value
    client.close()


@pytest.mark.service
def test_the_interceptor_leaves_answers_of_a_live_server_alone(triton: TritonServer) -> None:
    client = features.GrpcDeadlines(_OldStyleClient(triton.grpc_url))
    assert client.is_server_live(client_timeout=5) is True
    assert client.is_server_live() is True  # no timeout asked: none set
    assert client.infer("m", [], client_timeout=3) == "native 3"  # takes it itself
    client.close()


def test_the_thread_fallback_gives_up_at_the_timeout() -> None:
    class Stuck:
        def is_server_live(self, headers: Any = None) -> bool:
            time.sleep(5)
            return True

        def is_model_ready(self, name: str, headers: Any = None) -> bool:
            return name == "simple"

    client = features.GrpcDeadlines(Stuck())
    assert client.mode == "thread"  # no _channel/_client_stub to intercept
    started = time.monotonic()
    with pytest.raises(features.DeadlineExceeded) as caught:
        client.is_server_live(client_timeout=0.3)
    assert 0.25 <= time.monotonic() - started < 1.5
    assert classify(caught.value)[0] == "timeout"
    assert client.is_model_ready("simple", client_timeout=1) is True
    with pytest.raises(TypeError):  # errors of the call itself come through unchanged
        client.is_model_ready(client_timeout=1)


# ------------------------------------------------------------------- keepalive


@pytest.mark.service
def test_keepalive_without_one_option_field_runs_and_names_what_it_left_out(
        triton: TritonServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import tritonclient.grpc

    real = tritonclient.grpc.KeepAliveOptions

    class OldKeepAliveOptions(real):  # type: ignore[misc, valid-type]
        def __init__(self, keepalive_time_ms: int = 2**31 - 1,
                     keepalive_timeout_ms: int = 20000,
                     keepalive_permit_without_calls: bool = False) -> None:
            super().__init__(keepalive_time_ms, keepalive_timeout_ms,
                             keepalive_permit_without_calls)

    monkeypatch.setattr(tritonclient.grpc, "KeepAliveOptions", OldKeepAliveOptions)
    entry = _by_key(run_task(probe_task(triton, checks=["keepalive"])))[
        ("keepalive", "grpc", None)]
    assert entry["status"] == "pass", entry
    assert "http2_max_pings_without_data" not in entry["details"]["settings"]
    assert set(entry["details"]["settings_not_applied"]) == {"http2_max_pings_without_data"}
    assert "not set (KeepAliveOptions of tritonclient" in entry["message"]
    assert entry["message"].endswith("lacks them): http2_max_pings_without_data")


@pytest.mark.service
def test_keepalive_without_keepalive_options_is_skipped_with_the_reason(
        triton: TritonServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import tritonclient.grpc

    monkeypatch.delattr(tritonclient.grpc, "KeepAliveOptions")
    results = run_task(probe_task(triton, checks=["health", "keepalive"]))
    entry = _by_key(results)[("keepalive", "grpc", None)]
    assert entry["status"] == "skip", entry
    assert "has no tritonclient.grpc.KeepAliveOptions" in entry["message"]
    assert results["summary"]["ok"]  # a skip is not a failure


# ------------------------------------------------------------------- datatypes


@pytest.mark.service
def test_a_model_with_bf16_is_skipped_where_tritonclient_has_no_bf16(
        triton: TritonServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import tritonclient.utils

    real = tritonclient.utils.triton_to_np_dtype
    monkeypatch.setattr(tritonclient.utils, "triton_to_np_dtype",
                        lambda dt: None if dt == "BF16" else real(dt))
    task = probe_task(triton, models=["simple", "identity_all_types"], checks=[
        ("infer", {"shapes": {"IN_FP32": [2, 2], "IN_BYTES": [3]}})])
    by = _by_key(run_task(task))
    for protocol in ("http", "grpc"):
        assert by[("infer", protocol, "simple")]["status"] == "pass"
        skipped = by[("infer", protocol, "identity_all_types")]
        assert skipped["status"] == "skip", skipped
        assert "has no numpy type for BF16 tensors" in skipped["message"]
        assert "(tensors IN_BF16, OUT_BF16)" in skipped["message"]
        assert sorted(skipped["details"]["unsupported_tensors"]) == ["IN_BF16", "OUT_BF16"]


def test_datatype_problem_names_nothing_for_types_this_tritonclient_has() -> None:
    for datatype in ("BOOL", "INT8", "UINT64", "FP16", "FP32", "BF16", "BYTES"):
        assert features.datatype_problem(datatype) is None, datatype


# ------------------------------------------------------------------- aio clients


def test_aio_problem_says_why_an_aio_client_cannot_be_used(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert features.aio_problem("http") is None
    assert features.aio_problem("grpc") is None
    monkeypatch.setitem(sys.modules, "tritonclient.grpc.aio", None)
    reason = features.aio_problem("grpc")
    assert reason is not None and "has no usable tritonclient.grpc.aio" in reason
    assert reason.startswith("tritonclient 2.")

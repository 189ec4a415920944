"""The probe's HTTP/2 gRPC client against the real Triton (grpc C++ core): flow
control both ways with large tensors, SETTINGS and PING acknowledged, GOAWAY (Triton's
answer to too many pings), grpc-status and grpc-message from trailers and
trailers-only answers, streams the server resets, TLS with ALPN h2 and host-name
checks, mutual TLS, and the headers ``--grpc-restricted-protocol`` wants."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import numpy as np
import pytest
from fixtures_triton import RESTRICTED_KEY, RESTRICTED_VALUE, TLSFiles

from hpctriton.testing import TritonServer
from hpctriton_probe.load.generator import grpc_request
from hpctriton_probe.load.grpc_engine import GRPC_INFER, GrpcEngine
from hpctriton_probe.net import h2
from hpctriton_probe.net.grpc_h2 import UnaryCall, frame_message
from hpctriton_probe.net.hpack import encode_block

pytestmark = pytest.mark.service


def simple_request(model: str = "simple") -> bytes:
    arr = np.arange(16, dtype=np.int32).reshape(1, 16)
    return grpc_request(model, [("INPUT0", "INT32", arr), ("INPUT1", "INT32", arr)])


def failing_request() -> bytes:
    return grpc_request("failing", [("INPUT0", "FP32", np.zeros((1, 4), dtype=np.float32))])


def engine(port: int, host: str = "127.0.0.1", **kwargs: Any) -> GrpcEngine:
    made = GrpcEngine(host, port, timeout_s=kwargs.pop("timeout_s", 10.0), **kwargs)
    made.capture = True
    return made


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


async def send_all(eng: GrpcEngine, data: bytes, n: int = 1) -> list:
    try:
        return [await eng.send(data) for _ in range(n)]
    finally:
        await eng.close()


def test_large_tensors_both_ways_with_small_windows(triton: TritonServer) -> None:
    """6 MB in and out through echo_bytes with 64 kB windows on our side: our DATA waits
    for Triton's WINDOW_UPDATEs, Triton's waits for ours; Triton's PINGs (its
    bandwidth probes) and SETTINGS are acknowledged."""
    from tritonclient.grpc import service_pb2

    payload = bytes(range(256)) * (6 * 4096)  # above the 4 MB windows Triton grants
    request = grpc_request("echo_bytes", [("INPUT0", "BYTES",
                                           np.array([[payload]], dtype=np.object_))])
    eng = engine(triton.grpc_port, settings={"stream_window": 65535,
                                             "connection_window": 65535,
                                             "max_frame": 16384})

    async def main() -> tuple:
        results = await send_all(eng, request, 2)
        return results, eng.all_conns[0].counts
    results, counts = run(main())
    assert results == [None, None]
    answer = service_pb2.ModelInferResponse.FromString(eng.sample)
    raw = answer.raw_output_contents[0]
    assert int.from_bytes(raw[:4], "little") == len(payload) and raw[4:] == payload
    assert counts["window_updates_sent"] > 50  # 12 MB through 64 kB windows
    assert counts["window_updates_received"] > 0 and counts["data_frames_queued"] >= 1
    assert counts["settings_acked"] >= 1 and counts["settings_ack_received"] >= 1
    assert counts["pings_answered"] >= 1


def test_too_many_pings_bring_goaway_and_the_engine_reconnects(triton: TritonServer) -> None:
    """Triton allows two PINGs without calls (--grpc-http2-max-ping-strikes): more get
    GOAWAY ENHANCE_YOUR_CALM "too_many_pings"; the next request opens a new connection."""
    eng = engine(triton.grpc_port)

    async def main() -> tuple:
        await eng.warm()
        conn = eng.slots[0]
        assert conn is not None
        for i in range(8):
            if conn.goaway is not None:
                break
            await asyncio.wait_for(conn.ping(bytes([i]) * 8), 5)
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        after = await send_all(eng, simple_request(), 2)
        return conn.goaway, after, eng.opened
    goaway, after, opened = run(main())
    assert goaway is not None and goaway[1] == 11 and goaway[2] == b"too_many_pings"
    assert after == [None, None] and opened == 2


def test_grpc_status_and_message_from_tritons_answers(triton: TritonServer) -> None:
    eng = engine(triton.grpc_port)

    async def main() -> list:
        return await send_all(eng, simple_request("no_such_model"), 1) + \
            await send_all(engine(triton.grpc_port), failing_request(), 1)
    (unknown, failing) = run(main())
    assert unknown[0] == "server" and unknown[1] in ("NOT_FOUND", "UNAVAILABLE",
                                                     "INVALID_ARGUMENT")
    assert "no_such_model" in unknown[2]
    assert failing[0] == "server" and "fails every request on purpose" in failing[2]


def test_a_stream_triton_resets_is_reported_as_a_reset(triton: TritonServer) -> None:
    """A request Triton's gRPC refuses at the HTTP/2 level (no gRPC content type): the
    stream is reset (RST_STREAM), the connection lives on."""
    async def main() -> tuple:
        conn = await h2.connect("127.0.0.1", triton.grpc_port)
        loop = asyncio.get_running_loop()
        bad = encode_block([(b":method", b"POST"), (b":scheme", b"http"),
                            (b":path", GRPC_INFER.encode()),
                            (b":authority", triton.grpc_url.encode()),
                            (b"content-type", b"text/plain")])
        call = UnaryCall(loop.create_future(), loop.time() + 5)
        conn.open_stream(call, bad, frame_message(b""), True)
        reset = await asyncio.wait_for(call.future, 5)
        eng = engine(triton.grpc_port)
        good = await send_all(eng, simple_request(), 1)
        conn.close()
        return reset, good
    reset, good = run(main())
    assert reset[0] == "server" and reset[1].startswith("RST_STREAM")
    assert good == [None]


def test_tls_with_alpn_and_the_servers_ca(triton_tls: TritonServer, tls_files: TLSFiles) -> None:
    ctx = h2.client_ssl_context(tls_files.ca, None, None, True)
    eng = engine(triton_tls.grpc_port, ssl_context=ctx)

    async def main() -> tuple:
        results = await send_all(eng, simple_request(), 3)
        ssl_object = eng.all_conns[0].transport.get_extra_info("ssl_object")
        return results, ssl_object.selected_alpn_protocol()
    results, alpn = run(main())
    assert results == [None, None, None] and alpn == "h2"


@pytest.mark.parametrize("case", ["other-ca", "other-host", "plain-to-tls", "tls-to-plain"])
def test_tls_failures_are_tls_failures_not_hangs(case: str, triton: TritonServer,
                                                 triton_tls: TritonServer,
                                                 tls_files: TLSFiles) -> None:
    kwargs: dict[str, Any] = {"timeout_s": 3.0}
    port = triton_tls.grpc_port
    if case == "other-ca":
        kwargs["ssl_context"] = h2.client_ssl_context(tls_files.other_ca, None, None, True)
    elif case == "other-host":  # the certificate names 127.0.0.1 and localhost only
        kwargs["ssl_context"] = h2.client_ssl_context(tls_files.ca, None, None, True)
        kwargs["server_hostname"] = "triton.example.org"
    elif case == "tls-to-plain":
        kwargs["ssl_context"] = h2.client_ssl_context(tls_files.ca, None, None, True)
        port = triton.grpc_port
    (result,) = run(send_all(engine(port, **kwargs), simple_request(), 1))
    if case == "plain-to-tls":
        assert result[0] in ("unreachable", "timeout"), result
    else:
        assert result[0] == "tls", result
    if case == "other-host":
        assert "hostname" in result[2].lower() or "match" in result[2].lower(), result


def test_mutual_tls_needs_the_client_certificate(triton_mtls: TritonServer,
                                                 tls_files: TLSFiles) -> None:
    with_cert = h2.client_ssl_context(tls_files.ca, tls_files.client_cert,
                                      tls_files.client_key, True)
    without = h2.client_ssl_context(tls_files.ca, None, None, True)
    good = run(send_all(engine(triton_mtls.grpc_port, ssl_context=with_cert),
                        simple_request(), 1))
    (bad,) = run(send_all(engine(triton_mtls.grpc_port, ssl_context=without, timeout_s=3.0),
                          simple_request(), 1))
    assert good == [None]
    assert bad[0] in ("tls", "unreachable"), bad


def test_restricted_protocol_wants_its_header(triton_restricted: TritonServer) -> None:
    header = {f"triton-grpc-protocol-{RESTRICTED_KEY}": RESTRICTED_VALUE}
    good = run(send_all(engine(triton_restricted.grpc_port, headers=header),
                        simple_request(), 2))
    (bad,) = run(send_all(engine(triton_restricted.grpc_port), simple_request(), 1))
    assert good == [None, None]
    assert bad[0] == "server" and f"triton-grpc-protocol-{RESTRICTED_KEY}" in bad[2], bad


def test_streams_with_ids_and_errors_on_the_real_server(triton: TritonServer) -> None:
    from tritonclient.grpc import service_pb2

    eng = engine(triton.grpc_port, streaming=True)

    async def main() -> tuple:
        send = eng.sender(0)
        good = await asyncio.gather(*(send(simple_request()) for _ in range(20)))
        bad_send = eng.sender(1)
        bad = await bad_send(failing_request())
        again = await send(simple_request())
        await eng.close()
        return good, bad, again
    good, bad, again = run(main())
    assert good == [None] * 20 and again is None
    assert bad[0] == "server" and "fails every request on purpose" in bad[2]
    response = service_pb2.ModelStreamInferResponse.FromString(eng.sample)
    assert [o.name for o in response.infer_response.outputs] == ["OUTPUT0", "OUTPUT1"]


def test_ssl_context_checks_host_names_unless_verify_is_off(tls_files: TLSFiles) -> None:
    strict = h2.client_ssl_context(tls_files.ca, None, None, True)
    assert strict.check_hostname and strict.verify_mode == ssl.CERT_REQUIRED
    loose = h2.client_ssl_context(None, None, None, False)
    assert not loose.check_hostname and loose.verify_mode == ssl.CERT_NONE

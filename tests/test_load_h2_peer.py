"""The probe's HTTP/2 client (``net.h2``, ``net.grpc_h2``, ``load.grpc_engine``)
against a peer built on the ``h2`` package, the HTTP/2 state machine of the Python
stack, which refuses frames that break the protocol (flow control, frame sizes,
stream limits, header blocks). Each test makes the peer do one thing a server may do:
small windows, big answers, CONTINUATION, trailers-only answers, resets, GOAWAY,
stream limits, PINGs, silence."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from hpctriton_probe.load.grpc_engine import GrpcEngine
from hpctriton_probe.net import h2 as ours
from hpctriton_probe.net.grpc_h2 import UnaryCall, frame_message, request_block

OK_HEADERS = [(":status", "200"), ("content-type", "application/grpc")]


class Peer(asyncio.Protocol):
    """One server-side connection driven by the h2 package; ``on_request(peer, sid)``
    answers a request once its body has ended."""

    def __init__(self, server: PeerServer) -> None:
        self.server = server
        config = h2.config.H2Configuration(client_side=False, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.local_settings = h2.settings.Settings(
            client=False, initial_values=server.settings)
        self.transport: Any = None
        self.headers: dict[int, list] = {}
        self.bodies: dict[int, bytearray] = {}
        self.sending: dict[int, tuple[bytes, list | None]] = {}
        server.peers.append(self)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.conn.initiate_connection()
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.conn.receive_data(data)
        except Exception as exc:  # noqa: BLE001 - a protocol violation of ours: record it
            self.server.errors.append(exc)
            self.flush()
            self.transport.close()
            return
        for event in events:
            self.server.events.append(event)
            if isinstance(event, h2.events.RequestReceived):
                self.headers[event.stream_id] = event.headers
                self.bodies[event.stream_id] = bytearray()
                self.server.open_now += 1
                self.server.most_open = max(self.server.most_open, self.server.open_now)
            elif isinstance(event, h2.events.DataReceived):
                self.bodies[event.stream_id] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                   event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.server.on_request(self, event.stream_id)
            elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
                self.pump()
            elif isinstance(event, h2.events.StreamReset):
                self.server.open_now -= 1
        self.flush()

    def answer(self, sid: int, message: bytes = b"answer", trailers: list | None = None,
               pad: int | None = None) -> None:
        """Headers, one message (sent within the flow-control windows), trailers."""
        self.conn.send_headers(sid, OK_HEADERS)
        self.sending[sid] = (frame_message(message), trailers or [("grpc-status", "0")])
        self.pad = pad
        self.pump()

    def pump(self) -> None:
        for sid, (data, trailers) in list(self.sending.items()):
            while data:
                room = min(self.conn.local_flow_control_window(sid),
                           self.conn.max_outbound_frame_size - 256)
                if room <= 0:
                    break
                pad = getattr(self, "pad", None)
                chunk = data[:room - (pad + 1 if pad else 0)] if pad else data[:room]
                self.conn.send_data(sid, chunk, pad_length=pad)
                data = data[len(chunk):]
            self.sending[sid] = (data, trailers)
            if not data:
                del self.sending[sid]
                self.conn.send_headers(sid, trailers, end_stream=True)
                self.server.open_now -= 1
        self.flush()


class PeerServer:
    def __init__(self, on_request: Callable[[Peer, int], None],
                 settings: dict | None = None) -> None:
        self.on_request = on_request
        self.settings = settings or {}
        self.peers: list[Peer] = []
        self.events: list = []
        self.errors: list = []
        self.open_now = 0
        self.most_open = 0
        self.server: Any = None
        self.port = 0

    async def __aenter__(self) -> PeerServer:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: Peer(self), "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        for peer in self.peers:
            peer.transport.close()

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def echo(peer: Peer, sid: int) -> None:
    body = bytes(peer.bodies[sid])
    peer.answer(sid, body[5:])


async def engine_for(server: PeerServer, **kwargs: Any) -> GrpcEngine:
    engine = GrpcEngine("127.0.0.1", server.port, timeout_s=kwargs.pop("timeout_s", 5.0),
                        **kwargs)
    engine.capture = True
    return engine


def test_request_headers_and_message_reach_the_peer_and_the_answer_comes_back() -> None:
    async def main() -> tuple:
        async with PeerServer(echo) as server:
            engine = await engine_for(server, headers={"X-Token": "abc",
                                                       "triton-grpc-protocol-x-key": "s"})
            result = await engine.send(b"hello")
            await engine.close()
            return result, engine.sample, server
    result, sample, server = run(main())
    assert result is None and sample == b"hello"
    assert server.errors == []
    (headers,) = [p.headers for p in server.peers][0].values()
    assert headers[:6] == [(b":method", b"POST"), (b":scheme", b"http"),
                           (b":path", b"/inference.GRPCInferenceService/ModelInfer"),
                           (b":authority", f"127.0.0.1:{server.port}".encode()),
                           (b"content-type", b"application/grpc"), (b"te", b"trailers")]
    named = dict(headers)
    assert named[b"grpc-timeout"] == b"5000m"
    assert named[b"x-token"] == b"abc" and named[b"triton-grpc-protocol-x-key"] == b"s"
    # SETTINGS both ways, each acknowledged
    assert server.of(h2.events.RemoteSettingsChanged)
    assert server.of(h2.events.SettingsAcknowledged)


def test_a_large_request_waits_for_the_peers_window_and_is_split_into_frames() -> None:
    """The peer allows 1000 octets per stream: 300 kB go out as the peer's
    WINDOW_UPDATEs come, in frames no larger than its 16384-octet maximum (the h2
    package refuses anything else)."""
    message = bytes(range(256)) * 1200

    async def main() -> tuple:
        settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000}
        async with PeerServer(lambda p, s: p.answer(s, b"ok"), settings) as server:
            engine = await engine_for(server)
            result = await engine.send(message)
            conn = engine.slots[0]
            await engine.close()
            return result, server, conn
    result, server, conn = run(main())
    assert result is None and server.errors == []
    body = bytes(next(iter(server.peers[0].bodies.values())))
    assert body == frame_message(message)
    data_frames = server.of(h2.events.DataReceived)
    assert len(data_frames) > 300 and max(e.flow_controlled_length for e in data_frames) <= 16384
    assert conn.counts["window_updates_received"] > 100


def test_a_large_answer_needs_our_window_updates_padding_included() -> None:
    """We allow 65535 octets per stream and per connection: a 1 MB answer in padded
    frames arrives only if we acknowledge what we read (padding counts)."""
    big = b"z" * 1_000_000

    async def main() -> tuple:
        async with PeerServer(lambda p, s: p.answer(s, big, pad=17)) as server:
            engine = await engine_for(server, settings={
                "stream_window": 65535, "connection_window": 65535, "max_frame": 16384})
            result = await engine.send(b"x")
            conn = engine.slots[0]
            await engine.close()
            return result, engine.sample, conn, server
    result, sample, conn, server = run(main())
    assert result is None and sample == big
    assert conn.counts["window_updates_sent"] > 20
    assert server.errors == []


def test_header_blocks_larger_than_a_frame_use_continuation_both_ways() -> None:
    long_message = "bad%20thing%E2%82%AC " + "x" * 30000

    def answer(peer: Peer, sid: int) -> None:
        peer.answer(sid, b"", trailers=[("grpc-status", "13"), ("grpc-message", long_message)])

    async def main() -> tuple:
        async with PeerServer(answer) as server:
            engine = await engine_for(server, headers={"x-big": "v" * 40000},
                                      settings={"max_frame": 16384})
            result = await engine.send(b"x")
            await engine.close()
            return result, server
    result, server = run(main())
    assert server.errors == []
    assert dict(next(iter(server.peers[0].headers.values())))[b"x-big"] == b"v" * 40000
    kind, code, message = result
    assert (kind, code) == ("server", "INTERNAL")
    assert message.startswith("bad thing€ xxx") and len(message) == 300


@pytest.mark.parametrize("headers, expected", [
    ([(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "5"),
      ("grpc-message", "Request for unknown model: %27nope%27")],
     ("server", "NOT_FOUND", "Request for unknown model: 'nope'")),
    ([(":status", "200"), ("grpc-status", "4")], ("timeout", "DEADLINE_EXCEEDED",
                                                  "DEADLINE_EXCEEDED")),
    ([(":status", "503")], ("server", "UNAVAILABLE", "HTTP status 503 without grpc-status")),
], ids=["trailers-only", "deadline", "http-503"])
def test_trailers_only_answers_give_the_status(headers: list, expected: tuple) -> None:
    async def main() -> Any:
        async with PeerServer(lambda p, s: (p.conn.send_headers(s, headers, end_stream=True),
                                            p.flush())) as server:
            engine = await engine_for(server)
            result = await engine.send(b"x")
            await engine.close()
            return result
    assert run(main()) == expected


def test_a_reset_stream_is_a_server_error_and_a_refused_one_is_sent_again() -> None:
    seen: list[int] = []

    def answer(peer: Peer, sid: int) -> None:
        seen.append(sid)
        if len(seen) == 1:
            peer.conn.reset_stream(sid, h2.errors.ErrorCodes.INTERNAL_ERROR)
        elif len(seen) == 2:
            peer.conn.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
        else:
            peer.answer(sid)
        peer.flush()

    async def main() -> tuple:
        async with PeerServer(answer) as server:
            engine = await engine_for(server)
            first = await engine.send(b"x")
            second = await engine.send(b"x")
            await engine.close()
            return first, second, engine.retried
    first, second, retried = run(main())
    assert first == ("server", "RST_STREAM INTERNAL_ERROR",
                     "the server reset the stream (INTERNAL_ERROR)")
    assert second is None and retried == 1  # REFUSED_STREAM: not processed, sent again
    assert seen == [1, 3, 5]


def test_goaway_finishes_the_streams_below_it_and_resends_the_others_elsewhere() -> None:
    held: list[tuple[Peer, int]] = []

    def answer(peer: Peer, sid: int) -> None:
        held.append((peer, sid))
        if len(held) == 2:  # both first requests arrived on connection 1: go away
            # (a graceful GOAWAY written by hand: the h2 package sends nothing after its
            # own GOAWAY), then the answer to the stream below it
            first_peer, first_sid = held[0]
            first_peer.flush()
            first_peer.transport.write(ours.frame(ours.GOAWAY, 0, 0, first_sid.to_bytes(4, "big")
                                                  + bytes(4) + b"max_age"))
            first_peer.answer(first_sid, b"one")
        elif len(held) > 2:
            peer.answer(sid, b"again")

    async def main() -> tuple:
        async with PeerServer(answer) as server:
            engine = await engine_for(server)
            results = await asyncio.gather(engine.send(b"a"), engine.send(b"b"))
            await engine.close()
            return results, engine.opened, engine.retried, server
    results, opened, retried, server = run(main())
    assert results == [None, None]
    assert opened == 2 and retried == 1 and len(server.peers) == 2


def test_max_concurrent_streams_is_kept() -> None:
    async def main() -> tuple:
        settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2}

        def later(peer: Peer, sid: int) -> None:
            asyncio.get_running_loop().call_later(0.02, peer.answer, sid)

        async with PeerServer(later, settings) as server:
            engine = await engine_for(server)
            results = await asyncio.gather(*(engine.send(b"x") for _ in range(7)))
            await engine.close()
            return results, server
    results, server = run(main())
    assert results == [None] * 7 and server.errors == []
    assert server.most_open == 2


def test_pings_are_answered_and_ours_are_acknowledged() -> None:
    async def main() -> tuple:
        async with PeerServer(echo) as server:
            engine = await engine_for(server)
            await engine.warm()
            conn = engine.slots[0]
            peer = server.peers[0]
            peer.conn.ping(b"12345678")
            peer.flush()
            await asyncio.wait_for(conn.ping(b"abcdefgh"), 2)
            await engine.send(b"x")
            await engine.close()
            return server, conn
    server, conn = run(main())
    assert [e.ping_data for e in server.of(h2.events.PingAckReceived)] == [b"12345678"]
    assert [e.ping_data for e in server.of(h2.events.PingReceived)] == [b"abcdefgh"]
    assert conn.counts["pings_answered"] == 1


def test_a_silent_peer_times_out_and_the_stream_is_reset() -> None:
    async def main() -> tuple:
        async with PeerServer(lambda p, s: None) as server:
            engine = await engine_for(server, timeout_s=0.3)
            t0 = asyncio.get_running_loop().time()
            result = await engine.send(b"x")
            waited = asyncio.get_running_loop().time() - t0
            await asyncio.sleep(0.1)
            await engine.close()
            return result, waited, server
    result, waited, server = run(main())
    assert result == ("timeout", "timeout", "no answer within 0.3 s")
    assert 0.25 < waited < 1.0
    assert [e.error_code for e in server.of(h2.events.StreamReset)] == [8]  # CANCEL


def test_a_peer_that_breaks_the_protocol_gets_goaway_and_every_stream_fails() -> None:
    def garbage(peer: Peer, sid: int) -> None:
        # a WINDOW_UPDATE of length 3: a connection error (FRAME_SIZE_ERROR)
        peer.transport.write(ours.frame(ours.WINDOW_UPDATE, 0, 0, b"\x00\x00\x01"))

    async def main() -> tuple:
        async with PeerServer(garbage) as server:
            engine = await engine_for(server)
            result = await engine.send(b"x")
            await asyncio.sleep(0.05)
            await engine.close()
            return result, server
    result, server = run(main())
    assert result[:2] == ("server", "FRAME_SIZE_ERROR")
    assert [e.error_code for e in server.of(h2.events.ConnectionTerminated)] == [6]


def test_a_window_setting_changed_mid_connection_applies_to_open_streams() -> None:
    """The peer lowers INITIAL_WINDOW_SIZE while our large request is under way: the
    stream's window may go negative, and we send on only once WINDOW_UPDATEs bring it
    back (the h2 package refuses a frame beyond the window)."""
    message = b"q" * 200_000

    async def main() -> tuple:
        async with PeerServer(lambda p, s: p.answer(s, b"ok")) as server:
            engine = await engine_for(server)
            await engine.warm()
            peer = server.peers[0]
            peer.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 100})
            peer.flush()
            result = await engine.send(message)
            await engine.close()
            return result, server
    result, server = run(main())
    assert result is None and server.errors == []
    assert bytes(next(iter(server.peers[0].bodies.values()))) == frame_message(message)


def test_low_level_stream_api_and_unary_call_object() -> None:
    """The connection's own API, without the engine: one call, its status and body."""
    async def main() -> tuple:
        async with PeerServer(echo) as server:
            conn = await ours.connect("127.0.0.1", server.port, timeout_s=2)
            loop = asyncio.get_running_loop()
            call = UnaryCall(loop.create_future(), loop.time() + 5, capture=True)
            block = request_block(f"127.0.0.1:{server.port}", "/x/Y", tls=False)
            conn.open_stream(call, block, frame_message(b"raw"), True)
            result = await call.future
            conn.close()
            return result, call
    result, call = run(main())
    assert result is None and call.message_bytes() == b"raw"
    assert call.status == b"200" and call.grpc_status == b"0"


@pytest.mark.parametrize("fill", [
    {"model_name": "simple", "model_version": "1", "id": "12345"},
    {"id": "7"},
    {"model_name": "m" * 300, "id": "9"},
    {"model_name": "simple", "id": "1", "error": "boom: %s"},
    {"model_name": "simple"},
], ids=["usual", "only-id", "long-name", "error", "no-id"])
def test_stream_answers_are_read_as_protobuf_reads_them(fill: dict) -> None:
    from tritonclient.grpc import service_pb2

    from hpctriton_probe.net.grpc_h2 import stream_response

    answer = service_pb2.ModelStreamInferResponse()
    for key in ("model_name", "model_version", "id"):
        if key in fill:
            setattr(answer.infer_response, key, fill[key])
    answer.infer_response.outputs.add().name = "OUTPUT0"
    if "error" in fill:
        answer.error_message = fill["error"]
    assert stream_response(answer.SerializeToString()) == (
        fill.get("id", "").encode(), fill.get("error", ""))


def test_requests_waiting_behind_a_silent_server_fail_together_at_one_timeout() -> None:
    """A port that accepts and never speaks HTTP/2: the requests that queued behind
    the first connection attempt fail with it, not one timeout after another."""
    async def main() -> tuple:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(5)
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        engine = GrpcEngine("127.0.0.1", port, timeout_s=0.3)
        t0 = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(engine.send(b"x") for _ in range(10)))
        waited = asyncio.get_running_loop().time() - t0
        await engine.close()
        server.close()
        return results, waited
    results, waited = run(main())
    assert {r[:2] for r in results} == {("timeout", "connect")}
    assert waited < 1.0

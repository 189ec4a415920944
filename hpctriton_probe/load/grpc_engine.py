"""The gRPC load engine: unary ``ModelInfer`` calls or ``ModelStreamInfer`` streams on
the probe's own HTTP/2 client (:mod:`hpctriton_probe.net.h2`, ``net.grpc_h2``).

Why not grpcio: its Python API costs 120-200 µs of client CPU per call (measured here
with grpc.aio and with the synchronous ``future()`` API alike), more than perf_analyzer
(about 100 µs) and far more than the server spends on a small model. Here a request is
a pre-built header block and the pre-built message; per request the client writes two
frame headers with the stream id and reads three frames back (headers and trailers
decoded once, then taken from the HPACK cache), and writes of one event-loop tick go
out together. About 30 µs per request on this machine.

* Unary: streams multiplexed on ``connections`` HTTP/2 connections (a closed-loop lane
  keeps to one; the open loop takes them in turn). A request the server says it never
  processed (GOAWAY above its stream, REFUSED_STREAM) is sent once more on a new
  connection, so counts stay exact.
* Streaming: as perf_analyzer ``--streaming``, one ``ModelStreamInfer`` stream per
  closed-loop lane (one shared stream in the open loop); requests carry ids
  (``ModelInferRequest.id``, field 3, appended to the pre-built bytes: protobuf takes
  the last value of a field) and answers are matched by the id Triton echoes.
* Decoupled models (``decoupled``: LLM serving): always streams, and a request is
  answered by any number of responses with its id, then a final one; the pre-built
  requests ask for the empty final response (``triton_enable_empty_final_response``),
  so every request ends with ``triton_final_response`` true whatever the model does.
  Each response is read for its id, error, final flag and tokens
  (``grpc_h2.decoupled_reply``), and its arrival time kept; a request's answer is a
  :class:`~hpctriton_probe.load.tokens.StreamFigures` (first response, gaps, tokens).
* Deadlines: every request has ``timeout_s``; the server is told (``grpc-timeout``),
  and a sweep every 0.1 s fails late requests as ``timeout`` (resetting unary streams).
  A streamed request's deadline is for its last response.

Standard library only; Python 3.7 compatible.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any, Dict, List, Optional, Tuple

from hpctriton_probe.load.tokens import StreamFigures
from hpctriton_probe.net import h2
from hpctriton_probe.net.grpc_h2 import (
    BidiStream,
    UnaryCall,
    decoupled_reply,
    frame_message,
    request_block,
    stream_response,
)

GRPC_INFER = "/inference.GRPCInferenceService/ModelInfer"
GRPC_STREAM = "/inference.GRPCInferenceService/ModelStreamInfer"
SWEEP_S = 0.1
Failure = h2.Failure


def connect_failure(exc: BaseException, where: str, timeout_s: float) -> Failure:
    """A failed connection attempt as ``(kind, code, message)``."""
    if isinstance(exc, asyncio.TimeoutError):
        return ("timeout", "connect", f"no HTTP/2 connection to {where} within {timeout_s:g} s")
    if isinstance(exc, h2.ConnectFailed):
        return exc.failure
    if isinstance(exc, ConnectionRefusedError):
        return ("refused", "refused", f"connection refused by {where}")
    if isinstance(exc, ssl.SSLError):
        return ("tls", "tls", f"TLS failed: {exc}")
    if isinstance(exc, OSError):
        return ("unreachable", type(exc).__name__, f"{where}: {exc}")
    return ("probe", type(exc).__name__, str(exc))


class GrpcEngine:
    """One server's gRPC load: unary calls, or streams when ``streaming``."""

    def __init__(self, host: str, port: int, *, timeout_s: float,
                 headers: Optional[Dict[str, str]] = None,
                 ssl_context: Optional[ssl.SSLContext] = None, streaming: bool = False,
                 connections: int = 1, server_hostname: Optional[str] = None,
                 settings: Optional[Dict[str, Any]] = None,
                 decoupled: Optional[Dict[str, Any]] = None) -> None:
        self.host = host.strip("[]")
        #: A decoupled model: ``{"token_output": name or None, "rule": code}``
        #: (``tokens.rule_code``); its requests always go on streams.
        self.decoupled = decoupled
        if decoupled is not None:
            streaming = True
        self.port = port
        self.where = f"{host}:{port}"
        authority = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context
        self.server_hostname = server_hostname
        self.streaming = streaming
        self.settings = dict(settings or {})
        tls = ssl_context is not None
        self.block = request_block(authority, GRPC_INFER, tls=tls, headers=headers,
                                   timeout_s=timeout_s)
        self.stream_block = request_block(authority, GRPC_STREAM, tls=tls, headers=headers)
        self.slots: List[Optional[h2.Connection]] = [None] * max(1, connections)
        self._locks: Dict[int, asyncio.Lock] = {}
        self.opened = 0
        self.retried = 0
        self.capture = False
        self.sample: Optional[bytes] = None
        self._framed: Dict[bytes, bytes] = {}
        self._lanes: Dict[int, _StreamLane] = {}
        self._turn = 0
        self.loop: Any = None
        self._sweeper: Optional[asyncio.Task] = None
        self.all_conns: List[h2.Connection] = []
        #: When the last connection attempt failed, and how.
        self._failed: Optional[Tuple[float, Failure]] = None

    # ------------------------------------------------------------ connections
    async def _connection(self, slot: int) -> Any:
        """The usable connection of ``slot`` (opened when needed), or a Failure."""
        conn = self.slots[slot]
        if conn is not None and conn.usable:
            return conn
        lock = self._locks.get(slot)
        if lock is None:
            lock = self._locks[slot] = asyncio.Lock()
        asked = time.perf_counter()
        async with lock:
            conn = self.slots[slot]
            if conn is not None and conn.usable:
                return conn
            if self._failed is not None and self._failed[0] >= asked:
                return self._failed[1]  # an attempt made while we waited failed: so do we
            try:
                conn = await h2.connect(self.host, self.port, ssl_context=self.ssl_context,
                                        server_hostname=self.server_hostname,
                                        timeout_s=self.timeout_s, **self.settings)
            except Exception as exc:  # noqa: BLE001 - every way to fail is classified
                failure = connect_failure(exc, self.where, self.timeout_s)
                self._failed = (time.perf_counter(), failure)
                return failure
            self.slots[slot] = conn
            self.opened += 1
            self.all_conns.append(conn)
            if len(self.all_conns) > 64:  # keep the recent ones (tests, counters)
                del self.all_conns[:32]
            if self._sweeper is None:
                self._sweeper = asyncio.get_event_loop().create_task(self._sweep())
            return conn

    async def warm(self) -> None:
        """Connect before the load starts (a failure shows in the load's errors)."""
        for slot in range(len(self.slots)):
            await self._connection(slot)

    def connections(self) -> int:
        return self.opened

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for lane in self._lanes.values():
            lane.close()
        for conn in self.slots:
            if conn is not None:
                conn.close()
        self.slots = [None] * len(self.slots)

    # ------------------------------------------------------------------ unary
    def sender(self, lane: int) -> Any:
        """The send function of closed-loop lane ``lane`` or, with ``lane < 0``, of
        the open loop."""
        if self.streaming:
            if lane not in self._lanes:
                kind = _StreamLane if self.decoupled is None else _TokenLane
                self._lanes[lane] = kind(self, max(lane, 0) % len(self.slots))
            return self._lanes[lane].send
        if len(self.slots) == 1:
            return self.send
        if lane >= 0:
            slot = lane % len(self.slots)

            async def send_on(data: bytes) -> Optional[Failure]:
                return await self._unary(data, slot)
            return send_on
        return self.send

    async def send(self, data: bytes) -> Optional[Failure]:
        slot = 0
        if len(self.slots) > 1:
            self._turn = slot = (self._turn + 1) % len(self.slots)
        return await self._unary(data, slot)

    async def _unary(self, data: bytes, slot: int) -> Optional[Failure]:
        framed = self._framed.get(data)
        if framed is None:
            framed = self._framed[data] = frame_message(data)
        loop = asyncio.get_event_loop()
        for attempt in (0, 1):
            conn = self.slots[slot]
            if conn is None or not conn.usable:
                conn = await self._connection(slot)
                if isinstance(conn, tuple):
                    return conn
            call = UnaryCall(loop.create_future(), time.perf_counter() + self.timeout_s,
                             self.capture)
            conn.open_stream(call, self.block, framed, True)
            result = await call.future
            if result is None:
                if self.capture:
                    self.capture = False
                    self.sample = call.message_bytes()
                return None
            if not call.retryable or attempt:
                return result
            self.retried += 1
        return None  # pragma: no cover - the loop returns

    async def _sweep(self) -> None:
        late_failure = ("timeout", "timeout", f"no answer within {self.timeout_s:g} s")
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.perf_counter()
            if not self.streaming:
                # every open connection: also those draining after a GOAWAY
                for conn in [c for c in self.all_conns if not c.closed]:
                    late = []
                    for stream in conn.streams.values():  # in the order they were opened
                        call = stream.handler
                        if call.deadline >= now:
                            break
                        late.append(call)
                    for call in late:
                        call.cancel()
                        call._finish(late_failure)
                    queued = conn.queued  # waiting for MAX_CONCURRENT_STREAMS room
                    while queued and queued[0][0].deadline < now:
                        queued.popleft()[0]._finish(late_failure)
            for lane in self._lanes.values():
                lane.sweep(now)


class _StreamLane:
    """One ``ModelStreamInfer`` stream and the requests waiting on it."""

    def __init__(self, engine: GrpcEngine, slot: int) -> None:
        self.engine = engine
        self.slot = slot
        self.stream: Optional[BidiStream] = None
        self.pending: Dict[bytes, List[Any]] = {}
        self.next_id = 0
        #: the gRPC prefix (flag, length) of each pre-built request with an id of N
        #: digits appended, by (request, N)
        self._prefix: Dict[Tuple[bytes, int], bytes] = {}

    def _entry(self, future: Any, deadline: float) -> List[Any]:
        """What ``pending`` holds for one request (the decoupled slot adds its figures)."""
        return [future, deadline]

    async def send(self, data: bytes) -> Any:
        engine = self.engine
        stream = self.stream
        if stream is None or stream.ended:
            conn = await engine._connection(self.slot)
            if isinstance(conn, tuple):
                return conn
            engine.loop = asyncio.get_event_loop()
            stream = self.stream = BidiStream(self._message, lambda f: None)
            stream.on_end = lambda failure, s=stream: self._ended(s, failure)
            stream.open(conn, engine.stream_block)
        self.next_id += 1
        rid = b"%d" % self.next_id
        n = len(rid)
        prefix = self._prefix.get((data, n))
        if prefix is None:  # ModelInferRequest.id is field 3: tag 0x1a, length, digits
            prefix = self._prefix[(data, n)] = b"\x00" + (len(data) + 2 + n).to_bytes(4, "big")
        future = engine.loop.create_future()
        self.pending[rid] = self._entry(future, time.perf_counter() + engine.timeout_s)
        if not stream.write_framed(b"".join((prefix, data, b"\x1a", bytes((n,)), rid))):
            self.pending.pop(rid, None)
            return ("unreachable", "stream", "the stream ended before this request was "
                    "written")
        return await future

    def _message(self, message: bytes) -> None:
        try:
            rid, error = stream_response(message)
        except (ValueError, IndexError) as exc:
            if self.stream is not None:
                self.stream.close()
            self._fail_all(("server", "bad-response", f"cannot read a stream answer: {exc}"))
            return
        entry = self.pending.pop(rid, None)
        if entry is None:
            if not error or not self.pending:
                return  # answered after its timeout
            # an error without the request's id: it is for the oldest request
            entry = self.pending.pop(next(iter(self.pending)))
        future = entry[0]
        if future.done():
            return
        if error:
            text = error.strip().splitlines()[0][:300] if error.strip() else "error"
            future.set_result(("server", "stream", text))
        else:
            if self.engine.capture:
                self.engine.capture = False
                self.engine.sample = message
            future.set_result(None)

    def _ended(self, stream: BidiStream, failure: Optional[Failure]) -> None:
        if self.stream is stream:
            self.stream = None
        self._fail_all(failure or ("unreachable", "stream", "the stream ended"))

    def _fail_all(self, failure: Failure) -> None:
        pending, self.pending = self.pending, {}
        for entry in pending.values():
            future = entry[0]
            if not future.done():
                future.set_result(failure)

    def sweep(self, now: float) -> None:
        late = []
        for rid, entry in self.pending.items():
            if entry[1] >= now:
                break
            late.append(rid)
        for rid in late:
            future = self.pending.pop(rid)[0]
            if not future.done():
                future.set_result(("timeout", "timeout",
                                   f"no answer within {self.engine.timeout_s:g} s"))

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


class _TokenLane(_StreamLane):
    """A stream to a decoupled model: many responses per request id, until the one
    with the final flag. A pending entry is ``[future, deadline, figures]``; the
    future gets the request's ``StreamFigures`` (or a failure)."""

    def __init__(self, engine: GrpcEngine, slot: int) -> None:
        super().__init__(engine, slot)
        spec = engine.decoupled or {}
        name = spec.get("token_output")
        self.token_output: Optional[bytes] = name.encode("utf-8") if name else None
        self.rule = int(spec.get("rule", 1))
        #: Output tensor descriptions seen on this stream (``decoupled_reply``'s cache).
        self.described: Dict[bytes, Tuple[bytes, int]] = {}

    def _entry(self, future: Any, deadline: float) -> List[Any]:
        return [future, deadline, StreamFigures()]

    def _message(self, message: bytes) -> None:
        now = time.perf_counter()
        try:
            rid, error, final, outputs, tokens = decoupled_reply(
                message, self.token_output, self.rule, self.described)
        except (ValueError, IndexError) as exc:
            if self.stream is not None:
                self.stream.close()
            self._fail_all(("server", "bad-response", f"cannot read a stream answer: {exc}"))
            return
        entry = self.pending.get(rid)
        if entry is None:
            if not error or not self.pending:
                return  # answered after its timeout, or after an error
            rid = next(iter(self.pending))  # an error without the request's id: the oldest
            entry = self.pending[rid]
        if error:
            del self.pending[rid]
            if not entry[0].done():
                text = error.strip().splitlines()[0][:300] if error.strip() else "error"
                entry[0].set_result(("server", "stream", text))
            return
        figures = entry[2]
        if outputs:
            figures.response(now, tokens)
            if self.engine.capture:
                self.engine.capture = False
                self.engine.sample = message
        if final:
            del self.pending[rid]
            figures.end = now
            if not entry[0].done():
                entry[0].set_result(figures)

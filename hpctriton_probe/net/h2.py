"""A small HTTP/2 client connection (RFC 9113) on asyncio, made for gRPC load.

Why by hand: the probe runs in old container images that have the standard library,
tritonclient and numpy; grpcio's Python API costs 120-200 µs of client CPU per call,
more than the server spends on a small model, and there is no HTTP/2 library in those
images. This module does what a gRPC client needs and no more; the tests check it
against the ``h2`` package (a peer built on it) and against the real Triton.

What it does:

* the connection preface, SETTINGS both ways (acknowledged; the server's
  MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE and HEADER_TABLE_SIZE
  applied), PING answered (and sent, for tests and liveness), GOAWAY (streams above
  the last id the server processed fail as *not processed*, the others finish; no
  new streams), RST_STREAM both ways, unknown frame types ignored;
* flow control both ways: DATA is sent within the connection's and the stream's
  windows and queued when they are short, in frames no larger than the server's
  MAX_FRAME_SIZE; received DATA is acknowledged with WINDOW_UPDATE once half a window
  has been used (per connection, and per stream for streams that go on);
* header blocks split into HEADERS + CONTINUATION when larger than a frame; received
  ones joined, decoded by :mod:`hpack` (padding and priority fields removed);
* writes batched: everything a tick of the event loop queues goes out in one
  ``transport.write``;
* TLS with ALPN ``h2`` (a server that does not agree on h2 is refused).

A stream is driven through a handler object with four methods (see ``StreamHandler``):
``on_headers(fields, end_stream)``, ``on_data(payload, end_stream)``,
``on_reset(error_code)`` and ``on_lost(failure)`` — the gRPC layer
(:mod:`hpctriton_probe.net.grpc_h2`) implements them.

Standard library only; Python 3.7 compatible.
"""

import asyncio
import ssl
import struct
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Tuple

from hpctriton_probe.net.hpack import HpackDecoder, HpackError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# frame types (RFC 9113 section 6)
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
# flags
END_STREAM = 0x1
ACK = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# settings (section 6.5.2)
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, \
    MAX_FRAME_SIZE, MAX_HEADER_LIST_SIZE = range(1, 7)
# error codes (section 7)
ERROR_NAMES = ("NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
               "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM",
               "CANCEL", "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM",
               "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED")
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR = 0, 1, 2, 3
FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = 6, 7, 8, 9

MAX_WINDOW = 2 ** 31 - 1
MAX_STREAM_ID = 2 ** 31 - 1
DEFAULT_WINDOW = 65535
DEFAULT_FRAME = 16384
MAX_FRAME_LIMIT = 2 ** 24 - 1

#: (length << 8 | type, flags, stream id) of a frame header: 9 octets.
_HEAD = struct.Struct(">IBI")
_U32 = struct.Struct(">I")

#: ``(kind, code, message)`` as the load generator classifies failures.
Failure = Tuple[str, str, str]


def error_name(code: int) -> str:
    return ERROR_NAMES[code] if 0 <= code < len(ERROR_NAMES) else f"0x{code:x}"


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    """One frame: the 9-octet header and ``payload``."""
    return _HEAD.pack((len(payload) << 8) | ftype, flags, sid) + payload


class ConnectFailed(ConnectionError):
    """The connection ended before the server's SETTINGS; ``failure`` says how."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure[2])
        self.failure = failure


class H2Error(Exception):
    """A connection error (RFC 9113 section 5.4.1): the connection is unusable."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class StreamHandler:
    """What a stream's owner implements (a protocol, documented by this base class)."""

    def opened(self, conn: "Connection", sid: int) -> None:
        """The stream got its id (at once, or later when it waited for
        MAX_CONCURRENT_STREAMS room)."""

    def on_headers(self, fields: List[Tuple[bytes, bytes]], end_stream: bool) -> None:
        """A complete header block (response headers or trailers)."""

    def on_data(self, payload: bytes, end_stream: bool) -> None:
        """A DATA frame's payload (padding removed; may be empty)."""

    def on_reset(self, code: int) -> None:
        """The server reset the stream (RST_STREAM with ``code``)."""

    def on_lost(self, failure: Failure, retryable: bool) -> None:
        """The stream ends without an answer: connection lost, or GOAWAY above this
        stream (``retryable``: the server says it did not process it)."""


class _Stream:
    __slots__ = ("sid", "handler", "send_window", "recv_unacked", "pending", "pending_end",
                 "local_closed", "remote_closed")

    def __init__(self, sid: int, handler: Any, send_window: int) -> None:
        self.sid = sid
        self.handler = handler
        self.send_window = send_window
        self.recv_unacked = 0
        #: DATA not yet sent (windows short): a memoryview of what is left.
        self.pending: Optional[memoryview] = None
        self.pending_end = False
        self.local_closed = False
        self.remote_closed = False


class Connection(asyncio.Protocol):
    """One HTTP/2 client connection. Create it through :func:`connect`.

    ``stream_window`` and ``connection_window``: how much DATA the server may send
    before we acknowledge (the first through SETTINGS_INITIAL_WINDOW_SIZE, the second
    by a WINDOW_UPDATE right after the preface). ``max_frame``: the largest frame we
    accept (SETTINGS_MAX_FRAME_SIZE).
    """

    def __init__(self, *, stream_window: int = 1 << 24, connection_window: int = 1 << 30,
                 max_frame: int = 1 << 20, header_table: int = 4096,
                 loop: Optional[asyncio.AbstractEventLoop] = None) -> None:
        self.loop = loop or asyncio.get_event_loop()
        self.transport: Any = None
        self.buf = bytearray()
        self.streams: Dict[int, _Stream] = {}
        self.next_sid = 1
        self.decoder = HpackDecoder(header_table)
        # what we allow the server
        self.local_stream_window = stream_window
        self.local_conn_window = connection_window
        self.local_max_frame = max_frame
        self.recv_unacked = 0
        # what the server allows us
        self.send_window = DEFAULT_WINDOW
        self.peer_stream_window = DEFAULT_WINDOW
        self.peer_max_frame = DEFAULT_FRAME
        self.peer_max_streams = 2 ** 31
        self.table_update = False  # the server changed HEADER_TABLE_SIZE: tell it ours is 0
        #: Streams with DATA waiting for window, in order.
        self.blocked: Deque[_Stream] = deque()
        #: Streams waiting for MAX_CONCURRENT_STREAMS room: (handler, block, data, end).
        self.queued: Deque[Tuple[Any, bytes, Optional[bytes], bool]] = deque()
        self.out: List[bytes] = []
        self._flush_soon = False
        # header block being received across CONTINUATION frames
        self._hsid = 0
        self._hparts: List[bytes] = []
        self._hend = False
        self.ready: asyncio.Future = self.loop.create_future()
        self.closed = False
        #: (last stream id, error code, debug data) once the server sent GOAWAY.
        self.goaway: Optional[Tuple[int, int, bytes]] = None
        self.failure: Optional[Failure] = None
        self.pings: Dict[bytes, asyncio.Future] = {}
        #: Counters, for tests and the results: frames seen and sent of some kinds.
        self.counts: Dict[str, int] = {"settings_acked": 0, "settings_ack_received": 0,
                                       "pings_answered": 0, "window_updates_sent": 0,
                                       "window_updates_received": 0, "resets_received": 0,
                                       "streams": 0, "data_frames_queued": 0}

    # ------------------------------------------------------------------ asyncio
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
            self._fail(("tls", "alpn", "the server did not agree to HTTP/2 over TLS (ALPN "
                        "h2); is this a gRPC port?"))
            transport.abort()
            return
        settings = b"".join(struct.pack(">HI", key, value) for key, value in (
            (ENABLE_PUSH, 0), (INITIAL_WINDOW_SIZE, self.local_stream_window),
            (MAX_FRAME_SIZE, self.local_max_frame),
            (HEADER_TABLE_SIZE, self.decoder.max_allowed)))
        first = PREFACE + frame(SETTINGS, 0, 0, settings)
        if self.local_conn_window > DEFAULT_WINDOW:
            first += frame(WINDOW_UPDATE, 0, 0,
                           _U32.pack(self.local_conn_window - DEFAULT_WINDOW))
        transport.write(first)

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        reason = f": {exc}" if exc else ""
        self._fail(("unreachable", "closed", f"the server closed the connection{reason}"))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            self._frames(data)
        except H2Error as exc:
            self.abort(exc.code, str(exc))
        except HpackError as exc:
            self.abort(COMPRESSION_ERROR, f"header block: {exc}")
        # The callers woken by these answers run in the next iteration of the loop and
        # queue their next requests there; a flush scheduled now runs right after them,
        # in the same iteration (one turn of the loop saved per cycle).
        if not self._flush_soon and not self.closed:
            self._flush_soon = True
            self.loop.call_soon(self._flush)

    # ------------------------------------------------------------------ sending
    def _flush(self) -> None:
        self._flush_soon = False
        if self.out and not self.closed:
            data = b"".join(self.out)
            self.out.clear()
            self.transport.write(data)

    def _queue(self, data: bytes) -> None:
        self.out.append(data)
        if not self._flush_soon:
            self._flush_soon = True
            self.loop.call_soon(self._flush)

    @property
    def usable(self) -> bool:
        """New streams may be opened here."""
        return not self.closed and self.goaway is None and self.next_sid <= MAX_STREAM_ID

    def open_stream(self, handler: Any, block: bytes, data: Optional[bytes] = None,
                    end_stream: bool = True) -> int:
        """Open a stream: HEADERS with ``block``, then ``data`` (if any), END_STREAM on
        the last frame when ``end_stream``. Returns the stream id (0 when queued for
        MAX_CONCURRENT_STREAMS room). Raises ``ConnectionError`` when the connection
        cannot take new streams."""
        if not self.usable:
            raise ConnectionError("this connection takes no new streams")
        if len(self.streams) >= self.peer_max_streams:
            self.queued.append((handler, block, data, end_stream))
            return 0
        return self._open(handler, block, data, end_stream)

    def _open(self, handler: Any, block: bytes, data: Optional[bytes],
              end_stream: bool) -> int:
        sid = self.next_sid
        self.next_sid += 2
        if self.table_update:
            block = b"\x20" + block  # dynamic table size 0: we never index
            self.table_update = False
        stream = _Stream(sid, handler, self.peer_stream_window)
        self.streams[sid] = stream
        self.counts["streams"] += 1
        handler.opened(self, sid)
        head_end = END_STREAM if (end_stream and not data) else 0
        max_frame = self.peer_max_frame
        if len(block) <= max_frame:
            head = _HEAD.pack((len(block) << 8) | HEADERS, head_end | END_HEADERS, sid) + block
        else:
            parts = [frame(HEADERS, head_end, sid, block[:max_frame])]
            for pos in range(max_frame, len(block), max_frame):
                chunk = block[pos:pos + max_frame]
                last = pos + max_frame >= len(block)
                parts.append(frame(CONTINUATION, END_HEADERS if last else 0, sid, chunk))
            head = b"".join(parts)
        if not data:
            self._queue(head)
            if end_stream:
                stream.local_closed = True
            return sid
        n = len(data)
        if (n <= max_frame and n <= self.send_window and n <= stream.send_window
                and not self.blocked):
            self.send_window -= n
            stream.send_window -= n
            self._queue(head + _HEAD.pack((n << 8) | DATA, END_STREAM if end_stream else 0,
                                          sid) + data)
            if end_stream:
                stream.local_closed = True
            return sid
        self._queue(head)
        self._enqueue(stream, data, end_stream)
        return sid

    def send_data(self, sid: int, data: bytes, end_stream: bool = False) -> bool:
        """More DATA on an open stream (bidirectional calls). False when the stream is
        gone."""
        stream = self.streams.get(sid)
        if stream is None or stream.local_closed or self.closed:
            return False
        n = len(data)
        if (stream.pending is None and not self.blocked and n <= self.peer_max_frame
                and n <= self.send_window and n <= stream.send_window):
            self.send_window -= n
            stream.send_window -= n
            self._queue(_HEAD.pack((n << 8) | DATA, END_STREAM if end_stream else 0, sid)
                        + data)
            if end_stream:
                stream.local_closed = True
                self._maybe_done(stream)
        else:
            self._enqueue(stream, data, end_stream)
        return True

    def _enqueue(self, stream: _Stream, data: bytes, end_stream: bool) -> None:
        self.counts["data_frames_queued"] += 1
        if stream.pending is not None:
            stream.pending = memoryview(bytes(stream.pending) + data)
        else:
            stream.pending = memoryview(data)
            self.blocked.append(stream)
        stream.pending_end = end_stream
        self._pump()

    def _pump(self) -> None:
        """Send queued DATA as far as the windows allow, stream by stream in order."""
        blocked = self.blocked
        while blocked and self.send_window > 0:
            stream = blocked[0]
            if stream.sid not in self.streams or stream.pending is None:
                blocked.popleft()
                continue
            if stream.send_window <= 0:
                blocked.rotate(-1)  # try the next one; stop after a full turn
                if all(s.send_window <= 0 or s.sid not in self.streams for s in blocked):
                    return
                continue
            pending = stream.pending
            n = min(len(pending), self.send_window, stream.send_window, self.peer_max_frame)
            last = n == len(pending)
            flags = END_STREAM if (last and stream.pending_end) else 0
            self._queue(_HEAD.pack((n << 8) | DATA, flags, stream.sid) + bytes(pending[:n]))
            self.send_window -= n
            stream.send_window -= n
            if last:
                stream.pending = None
                blocked.popleft()
                if stream.pending_end:
                    stream.local_closed = True
                    self._maybe_done(stream)
            else:
                stream.pending = pending[n:]

    def reset(self, sid: int, code: int = CANCEL) -> None:
        """Reset a stream of ours (a request we stopped waiting for)."""
        stream = self.streams.pop(sid, None)
        if stream is not None and not self.closed:
            self._queue(frame(RST_STREAM, 0, sid, _U32.pack(code)))
            self._next_queued()

    def ping(self, payload: bytes = b"hpctping") -> asyncio.Future:
        """Send a PING; the future is done when its ACK arrives."""
        waiter = self.loop.create_future()
        payload = (payload + bytes(8))[:8]
        self.pings[payload] = waiter
        self._queue(frame(PING, 0, 0, payload))
        return waiter

    def close(self) -> None:
        """GOAWAY (no error) and close; streams still open are lost."""
        if not self.closed and self.transport is not None:
            self._flush()
            self.transport.write(frame(GOAWAY, 0, 0, _U32.pack(0) + _U32.pack(NO_ERROR)))
            self.transport.close()
        self._fail(("probe", "closed", "the client closed the connection"))

    def abort(self, code: int, message: str) -> None:
        """A connection error: GOAWAY with ``code``, close, fail every stream."""
        if not self.closed and self.transport is not None:
            self._flush()
            self.transport.write(frame(GOAWAY, 0, 0, _U32.pack(0) + _U32.pack(code)
                                       + message.encode("utf-8", "replace")[:200]))
            self.transport.close()
        self._fail(("server", error_name(code), f"HTTP/2 {error_name(code)}: {message}"))

    def _fail(self, failure: Failure) -> None:
        if self.closed:
            return
        self.closed = True
        self.failure = failure
        if not self.ready.done():
            self.ready.set_result(failure)
        streams = list(self.streams.values())
        self.streams.clear()
        queued = list(self.queued)
        self.queued.clear()
        for stream in streams:
            stream.handler.on_lost(failure, False)
        for handler, _, _, _ in queued:
            handler.on_lost(failure, True)  # never sent
        for waiter in self.pings.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError(failure[2]))
        self.pings.clear()

    def _maybe_done(self, stream: _Stream) -> None:
        if (stream.local_closed and stream.remote_closed
                and self.streams.pop(stream.sid, None) is not None):
            self._next_queued()

    def _next_queued(self) -> None:
        while self.queued and len(self.streams) < self.peer_max_streams and self.usable:
            handler, block, data, end = self.queued.popleft()
            self._open(handler, block, data, end)
        if self.goaway is not None and not self.streams and not self.closed:
            self.close()

    # ---------------------------------------------------------------- receiving
    def _frames(self, data: bytes) -> None:
        buf = self.buf
        if buf:
            buf += data
            view: Any = buf
        else:
            view = data
        pos = 0
        end = len(view)
        unpack = _HEAD.unpack_from
        streams = self.streams
        max_frame = self.local_max_frame
        while end - pos >= 9:
            head, flags, sid = unpack(view, pos)
            length = head >> 8
            if length > max_frame:
                raise H2Error(FRAME_SIZE_ERROR, f"frame of {length} octets, above our "
                              f"maximum {max_frame}")
            stop = pos + 9 + length
            if stop > end:
                break
            ftype = head & 0xFF
            start = pos + 9
            pos = stop
            sid &= 0x7FFFFFFF
            if self._hsid and ftype != CONTINUATION:
                raise H2Error(PROTOCOL_ERROR, "a header block was interrupted by another "
                              "frame")
            if ftype == DATA:
                self.recv_unacked += length
                stream = streams.get(sid)
                if sid == 0:
                    raise H2Error(PROTOCOL_ERROR, "DATA on stream 0")
                if stream is None:
                    continue  # reset or timed out by us: counted for the window only
                payload = view[start:stop]
                if flags & PADDED:
                    payload = self._unpad(payload)
                end_stream = bool(flags & END_STREAM)
                if not end_stream:
                    stream.recv_unacked += length
                    if stream.recv_unacked >= self.local_stream_window >> 1:
                        self._queue(frame(WINDOW_UPDATE, 0, sid,
                                          _U32.pack(stream.recv_unacked)))
                        self.counts["window_updates_sent"] += 1
                        stream.recv_unacked = 0
                else:
                    stream.remote_closed = True
                    self._maybe_done(stream)
                stream.handler.on_data(bytes(payload), end_stream)
            elif ftype == HEADERS:
                if sid == 0:
                    raise H2Error(PROTOCOL_ERROR, "HEADERS on stream 0")
                payload = view[start:stop]
                if flags & PADDED:
                    payload = self._unpad(payload)
                if flags & PRIORITY_FLAG:
                    payload = payload[5:]
                if flags & END_HEADERS:
                    self._header_block(sid, bytes(payload), bool(flags & END_STREAM))
                else:
                    self._hsid = sid
                    self._hparts = [bytes(payload)]
                    self._hend = bool(flags & END_STREAM)
            elif ftype == CONTINUATION:
                if not self._hsid or sid != self._hsid:
                    raise H2Error(PROTOCOL_ERROR, "CONTINUATION without a header block")
                self._hparts.append(bytes(view[start:stop]))
                if flags & END_HEADERS:
                    block = b"".join(self._hparts)
                    hsid, self._hsid, self._hparts = self._hsid, 0, []
                    self._header_block(hsid, block, self._hend)
            elif ftype == WINDOW_UPDATE:
                if length != 4:
                    raise H2Error(FRAME_SIZE_ERROR, "WINDOW_UPDATE of length "
                                  f"{length}")
                self._window_update(sid, _U32.unpack_from(view, start)[0] & 0x7FFFFFFF)
            elif ftype == PING:
                if length != 8 or sid:
                    raise H2Error(FRAME_SIZE_ERROR if length != 8 else PROTOCOL_ERROR,
                                  "malformed PING")
                payload = bytes(view[start:stop])
                if flags & ACK:
                    waiter = self.pings.pop(payload, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)
                else:
                    self._queue(frame(PING, ACK, 0, payload))
                    self.counts["pings_answered"] += 1
            elif ftype == SETTINGS:
                if sid:
                    raise H2Error(PROTOCOL_ERROR, "SETTINGS on a stream")
                if flags & ACK:
                    if length:
                        raise H2Error(FRAME_SIZE_ERROR, "SETTINGS ACK with a payload")
                    self.counts["settings_ack_received"] += 1
                else:
                    self._settings(bytes(view[start:stop]))
            elif ftype == RST_STREAM:
                if length != 4:
                    raise H2Error(FRAME_SIZE_ERROR, f"RST_STREAM of length {length}")
                self.counts["resets_received"] += 1
                stream = streams.pop(sid, None)
                if stream is not None:
                    stream.handler.on_reset(_U32.unpack_from(view, start)[0])
                    self._next_queued()
            elif ftype == GOAWAY:
                if length < 8:
                    raise H2Error(FRAME_SIZE_ERROR, f"GOAWAY of length {length}")
                last = _U32.unpack_from(view, start)[0] & 0x7FFFFFFF
                code = _U32.unpack_from(view, start + 4)[0]
                self._goaway(last, code, bytes(view[start + 8:stop]))
            elif ftype == PUSH_PROMISE:
                raise H2Error(PROTOCOL_ERROR, "PUSH_PROMISE although we disabled push")
            # PRIORITY and unknown types: ignored (RFC 9113 sections 5.5 and 6.3)
            if self.closed:
                return
        if pos:
            if buf:
                del buf[:pos]
            else:
                self.buf = bytearray(view[pos:])
        elif not buf:
            self.buf = bytearray(view)
        if self.recv_unacked >= self.local_conn_window >> 1:
            self._queue(frame(WINDOW_UPDATE, 0, 0, _U32.pack(self.recv_unacked)))
            self.counts["window_updates_sent"] += 1
            self.recv_unacked = 0

    @staticmethod
    def _unpad(payload: Any) -> Any:
        if not len(payload):
            raise H2Error(PROTOCOL_ERROR, "padded frame without a pad length")
        pad = payload[0]
        if pad >= len(payload):
            raise H2Error(PROTOCOL_ERROR, "padding longer than the frame")
        return payload[1:len(payload) - pad]

    def _header_block(self, sid: int, block: bytes, end_stream: bool) -> None:
        fields = self.decoder.decode(block)  # always: the table must stay in step
        stream = self.streams.get(sid)
        if stream is None:
            return
        if end_stream:
            stream.remote_closed = True
            if not stream.local_closed:  # answered before we finished sending: stop
                self.reset(sid, CANCEL)
            else:
                self._maybe_done(stream)
        stream.handler.on_headers(fields, end_stream)

    def _settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise H2Error(FRAME_SIZE_ERROR, "SETTINGS payload not a multiple of 6")
        for pos in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HI", payload, pos)
            if key == INITIAL_WINDOW_SIZE:
                if value > MAX_WINDOW:
                    raise H2Error(FLOW_CONTROL_ERROR, f"INITIAL_WINDOW_SIZE {value}")
                delta = value - self.peer_stream_window
                self.peer_stream_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
            elif key == MAX_FRAME_SIZE:
                if not DEFAULT_FRAME <= value <= MAX_FRAME_LIMIT:
                    raise H2Error(PROTOCOL_ERROR, f"MAX_FRAME_SIZE {value}")
                self.peer_max_frame = value
            elif key == MAX_CONCURRENT_STREAMS:
                self.peer_max_streams = value
            elif key == HEADER_TABLE_SIZE:
                self.table_update = True
            elif key == ENABLE_PUSH and value > 1:
                raise H2Error(PROTOCOL_ERROR, f"ENABLE_PUSH {value}")
        self._queue(frame(SETTINGS, ACK, 0))
        self.counts["settings_acked"] += 1
        if not self.ready.done():
            self.ready.set_result(None)
        self._pump()
        self._next_queued()

    def _window_update(self, sid: int, increment: int) -> None:
        self.counts["window_updates_received"] += 1
        if sid == 0:
            if increment == 0:
                raise H2Error(PROTOCOL_ERROR, "WINDOW_UPDATE of 0 on the connection")
            self.send_window += increment
            if self.send_window > MAX_WINDOW:
                raise H2Error(FLOW_CONTROL_ERROR, "connection window above 2^31-1")
        else:
            stream = self.streams.get(sid)
            if stream is None:
                return
            if increment == 0 or stream.send_window + increment > MAX_WINDOW:
                self.streams.pop(sid, None)
                self._queue(frame(RST_STREAM, 0, sid, _U32.pack(
                    PROTOCOL_ERROR if increment == 0 else FLOW_CONTROL_ERROR)))
                stream.handler.on_reset(PROTOCOL_ERROR if increment == 0
                                        else FLOW_CONTROL_ERROR)
                return
            stream.send_window += increment
        self._pump()

    def _goaway(self, last: int, code: int, debug: bytes) -> None:
        self.goaway = (last, code, debug)
        text = debug.decode("utf-8", "replace")
        failure = ("unreachable", "goaway", "the server sent GOAWAY ({}{}) before taking "
                   "this request".format(error_name(code), ": " + text if text else ""))
        for sid in [s for s in self.streams if s > last]:
            self.streams.pop(sid).handler.on_lost(failure, True)
        queued = list(self.queued)
        self.queued.clear()
        for handler, _, _, _ in queued:
            handler.on_lost(failure, True)
        if not self.streams:
            self.close()


def client_ssl_context(ca: Optional[str], cert: Optional[str], key: Optional[str],
                       verify: bool, alpn: Optional[List[str]] = None) -> ssl.SSLContext:
    """TLS for the load clients: with ``verify`` the certificate must chain to ``ca``
    (else the system's CAs) AND name the host connected to; without it, neither is
    checked (the configuration asked for that). A client certificate when given; ALPN
    ``h2`` by default (gRPC over HTTP/2), ``alpn=[]`` for plain HTTP/1.1."""
    ctx = ssl.create_default_context(cafile=ca)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert and key:
        ctx.load_cert_chain(certfile=cert, keyfile=key)
    protocols = ["h2"] if alpn is None else alpn
    if protocols:
        ctx.set_alpn_protocols(protocols)
    return ctx


async def connect(host: str, port: int, *, ssl_context: Optional[ssl.SSLContext] = None,
                  server_hostname: Optional[str] = None, timeout_s: float = 10.0,
                  **settings: Any) -> Connection:
    """Open a connection and wait for the server's SETTINGS. Raises ``OSError``
    (``ConnectionRefusedError``, ``ssl.SSLError``), ``asyncio.TimeoutError``, or
    ``ConnectionError`` with the failure's message when the server ends the
    connection before its SETTINGS."""
    loop = asyncio.get_event_loop()
    host = host.strip("[]")

    async def opened() -> Connection:
        _, conn = await loop.create_connection(
            lambda: Connection(loop=loop, **settings), host, port, ssl=ssl_context,
            server_hostname=(server_hostname or host) if ssl_context else None)
        failure = await conn.ready
        if failure is not None:
            raise ConnectFailed(failure)
        return conn

    return await asyncio.wait_for(opened(), timeout_s)

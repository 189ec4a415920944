"""gRPC over :mod:`hpctriton_probe.net.h2`: request headers, length-prefixed messages,
status from trailers (or a trailers-only answer), unary calls and bidirectional
streams, as the gRPC HTTP/2 protocol describes them (grpc/doc/PROTOCOL-HTTP2.md).

* The request header block is built once per (path, headers) and sent unchanged on
  every stream: ``:method POST``, ``:scheme``, ``:path``, ``:authority``,
  ``content-type: application/grpc``, ``te: trailers``, ``grpc-timeout`` (the
  request timeout, relative, so one constant), ``user-agent`` and the configured
  headers (lower case; values that may be secrets as HPACK "never indexed").
* An answer's status: ``grpc-status`` and ``grpc-message`` (percent-decoded UTF-8)
  from the trailers, or from the only HEADERS of a trailers-only answer; an HTTP
  status other than 200 without ``grpc-status`` is mapped as gRPC's
  http-grpc-status-mapping says.
* Messages are not compressed (we send no ``grpc-accept-encoding``).

Standard library only; Python 3.7 compatible.
"""

import struct
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

from hpctriton_probe.net.h2 import CANCEL, REFUSED_STREAM, Connection, Failure, error_name
from hpctriton_probe.net.hpack import encode_block

#: gRPC status codes by number.
STATUS_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
                "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
                "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
                "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED")
#: gRPC's http-grpc-status-mapping.md: an HTTP status without grpc-status.
HTTP_TO_GRPC = {400: "INTERNAL", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "UNIMPLEMENTED", 429: "UNAVAILABLE", 502: "UNAVAILABLE",
                503: "UNAVAILABLE", 504: "UNAVAILABLE"}
#: Headers HTTP/2 forbids (RFC 9113 section 8.2.2) or that the call sets itself.
FORBIDDEN = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
             "host", "te", "content-type", "grpc-timeout", "user-agent"}
_U32 = struct.Struct(">I")
SENSITIVE_HINTS = ("authorization", "token", "key", "secret", "cookie", "password")


def status_name(value: bytes) -> str:
    try:
        number = int(value)
    except ValueError:
        return value.decode("ascii", "replace")
    return STATUS_NAMES[number] if 0 <= number < len(STATUS_NAMES) else str(number)


def percent_decode(value: bytes) -> str:
    """``grpc-message`` is percent-encoded UTF-8."""
    return urllib.parse.unquote_to_bytes(value).decode("utf-8", "replace")


def timeout_header(seconds: float) -> bytes:
    """``grpc-timeout``: at most 8 digits and a unit."""
    for unit, scale in (("m", 1e3), ("S", 1.0), ("M", 1 / 60.0), ("H", 1 / 3600.0)):
        value = int(seconds * scale + 0.999)
        if value < 10 ** 8:
            return f"{max(1, value)}{unit}".encode("ascii")
    return b"99999999H"


def request_block(authority: str, path: str, *, tls: bool,
                  headers: Optional[Dict[str, str]] = None,
                  timeout_s: Optional[float] = None, user_agent: str = "hpctriton-probe") -> bytes:
    """The HPACK block of a gRPC request (built once, sent on every stream)."""
    fields: List[Tuple[bytes, bytes]] = [
        (b":method", b"POST"), (b":scheme", b"https" if tls else b"http"),
        (b":path", path.encode("ascii")), (b":authority", authority.encode("ascii")),
        (b"content-type", b"application/grpc"), (b"te", b"trailers"),
        (b"user-agent", user_agent.encode("ascii", "replace"))]
    if timeout_s:
        fields.append((b"grpc-timeout", timeout_header(timeout_s)))
    sensitive = []
    for key, value in (headers or {}).items():
        name = str(key).lower()
        text = str(value)
        if (not name or name.startswith(":") or name in FORBIDDEN
                or any(c in name for c in " \t\r\n\0:")):
            raise ValueError(f"header {key!r} cannot be sent over gRPC")
        if any(c in text for c in "\r\n\0"):
            raise ValueError(f"header {key!r} has a line break or NUL in its value")
        raw = name.encode("ascii")
        if any(hint in name for hint in SENSITIVE_HINTS):
            sensitive.append(raw)
        fields.append((raw, text.encode("utf-8")))
    return encode_block(fields, sensitive)


def frame_message(message: bytes) -> bytes:
    """A gRPC length-prefixed message (not compressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def answer_status(fields: List[Tuple[bytes, bytes]]) -> Tuple[Optional[bytes],
                                                               Optional[bytes], bytes]:
    """``(:status, grpc-status, grpc-message)`` of a header block."""
    status = grpc_status = None
    message = b""
    for name, value in fields:
        if name == b"grpc-status":
            grpc_status = value
        elif name == b":status":
            status = value
        elif name == b"grpc-message":
            message = value
    return status, grpc_status, message


def status_failure(http_status: Optional[bytes], grpc_status: Optional[bytes],
                   message: bytes) -> Optional[Failure]:
    """None for OK, else ``(kind, code, message)``: a status the server gave is the
    server's answer (``timeout`` for DEADLINE_EXCEEDED)."""
    if grpc_status is None:
        code = int(http_status or b"0") if (http_status or b"").isdigit() else 0
        if code == 200:
            return ("server", "INTERNAL", "the answer ended without grpc-status")
        name = HTTP_TO_GRPC.get(code, "UNKNOWN")
        return ("server", name, f"HTTP status {code} without grpc-status")
    if grpc_status == b"0":
        return None
    name = status_name(grpc_status)
    text = percent_decode(message).strip()
    first = text.splitlines()[0][:300] if text else name
    return ("timeout" if name == "DEADLINE_EXCEEDED" else "server", name, first)


def reset_failure(code: int) -> Failure:
    return ("server", f"RST_STREAM {error_name(code)}",
            f"the server reset the stream ({error_name(code)})")


class UnaryCall:
    """One unary call's answer: ``future`` gets ``None`` (OK) or a ``Failure``;
    ``retryable`` tells the caller the server never processed it (GOAWAY above it,
    REFUSED_STREAM). With ``capture`` the first message's bytes are kept in ``body``."""

    __slots__ = ("future", "status", "grpc_status", "message", "received", "body", "capture",
                 "retryable", "sid", "conn", "deadline", "headers_seen")

    def __init__(self, future: Any, deadline: float, capture: bool = False) -> None:
        self.future = future
        self.deadline = deadline
        self.capture = capture
        self.status: Optional[bytes] = None
        self.grpc_status: Optional[bytes] = None
        self.message = b""
        self.received = 0
        self.body: Optional[bytes] = None
        self.retryable = False
        self.sid = 0
        self.conn: Optional[Connection] = None
        self.headers_seen = False

    def opened(self, conn: Connection, sid: int) -> None:
        self.conn = conn
        self.sid = sid

    def _finish(self, result: Optional[Failure]) -> None:
        future = self.future
        if not future.done():
            future.set_result(result)

    def on_headers(self, fields: List[Tuple[bytes, bytes]], end_stream: bool) -> None:
        status, grpc_status, message = answer_status(fields)
        if not self.headers_seen:
            self.headers_seen = True
            self.status = status
        if grpc_status is not None:
            self.grpc_status = grpc_status
            self.message = message
        if end_stream:
            if self.grpc_status == b"0" and self.status == b"200":
                self._finish(None)
            else:
                self._finish(status_failure(self.status, self.grpc_status, self.message))

    def on_data(self, payload: bytes, end_stream: bool) -> None:
        self.received += len(payload)
        if self.capture:
            self.body = payload if self.body is None else self.body + payload
        if end_stream:
            self._finish(("server", "INTERNAL", "the answer ended without trailers"))

    def on_reset(self, code: int) -> None:
        if code == REFUSED_STREAM:
            self.retryable = True
        self._finish(reset_failure(code))

    def on_lost(self, failure: Failure, retryable: bool) -> None:
        self.retryable = retryable
        self._finish(failure)

    def message_bytes(self) -> Optional[bytes]:
        """The first answer message (capture only), without its 5-octet prefix."""
        if self.body is None or len(self.body) < 5:
            return None
        size = int.from_bytes(self.body[1:5], "big")
        return self.body[5:5 + size]

    def cancel(self) -> None:
        """Stop waiting: RST_STREAM CANCEL."""
        if self.conn is not None and self.sid:
            self.conn.reset(self.sid, CANCEL)


# ------------------------------------------------------------ protobuf, minimal


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def scan_fields(data: bytes, wanted: Tuple[int, ...]) -> Dict[int, bytes]:
    """The length-delimited fields numbered ``wanted`` of a protobuf message (the last
    of each), other fields skipped; stops once all were seen."""
    out: Dict[int, bytes] = {}
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, pos = _varint(data, pos)
            if number in wanted:
                out[number] = data[pos:pos + size]
                if len(out) == len(wanted):
                    return out
            pos += size
        elif wire == 0:
            _, pos = _varint(data, pos)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"protobuf wire type {wire} not supported")
    if pos > end:
        raise ValueError("truncated protobuf message")
    return out


def stream_response(message: bytes) -> Tuple[bytes, str]:
    """``(infer_response.id, error_message)`` of a ``ModelStreamInferResponse``
    (fields 1 error_message and 2 infer_response; ``ModelInferResponse.id`` is field 3)."""
    # fast path: a success as protobuf writes it (fields in number order, short
    # lengths): 0x12 LEN, then model_name (0x0a), model_version (0x12), id (0x1a)
    try:
        if message[0] == 0x12 and message[1] < 0x80:
            pos = 2
            for tag in (0x0A, 0x12):
                if message[pos] == tag and message[pos + 1] < 0x80:
                    pos += 2 + message[pos + 1]
            if message[pos] == 0x1A and message[pos + 1] < 0x80:
                return message[pos + 2:pos + 2 + message[pos + 1]], ""
    except IndexError:
        pass
    top = scan_fields(message, (1, 2))
    rid = b""
    inner = top.get(2)
    if inner:
        rid = scan_fields(inner, (3,)).get(3, b"")
    error = top.get(1, b"")
    return rid, error.decode("utf-8", "replace") if error else ""


_FINAL_KEY = b"triton_final_response"


def _skip(data: bytes, pos: int, wire: int) -> int:
    """The position after a field's value of wire type ``wire`` starting at ``pos``."""
    if wire == 2:
        size, pos = _varint(data, pos)
        return pos + size
    if wire == 0:
        return _varint(data, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 5:
        return pos + 4
    raise ValueError(f"protobuf wire type {wire} not supported")


def _length(data: bytes, pos: int) -> Tuple[int, int]:
    """A length prefix at ``pos``: ``(size, start of the value)`` (one-octet fast path)."""
    size = data[pos]
    if size < 0x80:
        return size, pos + 1
    return _varint(data, pos)


def _final_entry(data: bytes, pos: int, end: int) -> Optional[bool]:
    """A ``parameters`` map entry (``data[pos:end]``): its bool when its key is
    ``triton_final_response``, else None."""
    if data[pos] != 0x0A:
        return None
    size, start = _length(data, pos + 1)
    if data[start:start + size] != _FINAL_KEY:
        return None
    pos = start + size
    while pos < end:  # the value: field 2, an InferParameter whose bool_param is field 1
        tag = data[pos]
        size, start = _length(data, pos + 1)
        if tag == 0x12 and size >= 2 and data[start] == 0x08:
            return bool(_varint(data, start + 1)[0])
        pos = start + size
    return False


def _tensor_elements(data: bytes, pos: int, end: int) -> Tuple[bytes, int]:
    """``(name, elements)`` of an ``InferOutputTensor`` in ``data[pos:end]`` (its name
    is field 1, its shape the packed int64 field 3)."""
    name = b""
    count = 1
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, start = _length(data, pos)
            if number == 1:
                name = data[start:start + size]
            elif number == 3:
                stop = start + size
                while start < stop:
                    dim, start = _varint(data, start)
                    count *= dim
            pos = start + size if number != 3 else stop
        elif number == 3 and wire == 0:  # an unpacked shape element
            dim, pos = _varint(data, pos)
            count *= dim
        else:
            pos = _skip(data, pos, wire)
    return name, count


def _bytes_words(data: bytes, pos: int, end: int) -> int:
    """Words in a BYTES tensor's raw contents (4-octet little-endian length, then the
    bytes, per element)."""
    words = 0
    while pos + 4 <= end:
        size = int.from_bytes(data[pos:pos + 4], "little")
        pos += 4
        words += len(data[pos:pos + size].split())
        pos += size
    return words


#: A ``parameters`` entry ``triton_final_response`` as Triton writes it, but its value.
_FINAL_PREFIX = b"\x0a\x15" + _FINAL_KEY + b"\x12\x02\x08"
_FINAL_SIZE = len(_FINAL_PREFIX) + 1


def decoupled_reply(message: bytes, token_output: Optional[bytes], rule: int,
                    cache: Optional[Dict[bytes, Tuple[bytes, int]]] = None
                    ) -> Tuple[bytes, str, bool, int, int]:
    """``(id, error, final, outputs, tokens)`` of a ``ModelStreamInferResponse`` from a
    decoupled model: its request id, its error message (or ""), whether it carries
    ``triton_final_response`` true (the last response of its request), how many output
    tensors it has (0: the empty final response) and its tokens by ``rule`` (0
    responses: 1 per response with outputs, 1 elements: the elements of
    ``token_output``, 2 words: the words of its BYTES contents; ``token_output`` None:
    the first output). Only the fields needed are read; raw contents are skipped
    unless words are counted.

    Per response this is the client's main cost beside the event loop, so the usual
    shapes take short cuts: one-octet tags and lengths read in place, the final flag
    compared as Triton writes it, and an output tensor's description (name, datatype,
    shape: the same in every response of a stream) looked up in ``cache`` (a dict the
    caller keeps per stream) once it has been parsed.
    """
    end = len(message)
    pos = 0
    error = b""
    inner = inner_end = -1
    while pos < end:
        tag = message[pos]
        if tag == 0x12 or tag == 0x0A:
            size = message[pos + 1]
            start = pos + 2
            if size >= 0x80:
                size, start = _varint(message, pos + 1)
            if tag == 0x12:
                inner, inner_end = start, start + size
            else:
                error = message[start:start + size]
            pos = start + size
        else:
            key, pos = _varint(message, pos)
            pos = _skip(message, pos, key & 7)
    if pos > end or inner_end > end:
        raise ValueError("truncated protobuf message")
    rid = b""
    final = False
    outputs = tokens = raw_index = 0
    token_index = -1
    pos = inner
    while 0 <= pos < inner_end:
        tag = message[pos]
        if tag >= 0x80 or tag & 7 != 2:  # not a short length-delimited field: skip it
            key, pos = _varint(message, pos)
            pos = _skip(message, pos, key & 7)
            continue
        size = message[pos + 1]
        start = pos + 2
        if size >= 0x80:
            size, start = _varint(message, pos + 1)
        stop = start + size
        if tag == 0x1A:
            rid = message[start:stop]
        elif tag == 0x22:
            if stop == start + _FINAL_SIZE and message.startswith(_FINAL_PREFIX, start):
                final = message[stop - 1] == 1
            else:
                flag = _final_entry(message, start, stop)
                if flag is not None:
                    final = flag
        elif tag == 0x2A:
            if rule and token_index < 0:
                if cache is None:
                    name, elements = _tensor_elements(message, start, stop)
                else:
                    described = message[start:stop]
                    known = cache.get(described)
                    if known is None:
                        if len(cache) > 64:
                            cache.clear()
                        known = cache[described] = _tensor_elements(message, start, stop)
                    name, elements = known
                if token_output is None or name == token_output:
                    token_index = outputs
                    if rule == 1:
                        tokens = elements
            outputs += 1
        elif tag == 0x32:
            if rule == 2 and raw_index == token_index:
                tokens = _bytes_words(message, start, stop)
            raw_index += 1
        pos = stop
    if pos > inner_end:
        raise ValueError("truncated protobuf message")
    if rule == 0:
        tokens = 1 if outputs else 0
    return rid, error.decode("utf-8", "replace") if error else "", final, outputs, tokens


class BidiStream:
    """One bidirectional call (``ModelStreamInfer``): messages written with
    :meth:`write`, answers parsed from the DATA as they come and handed to
    ``on_message(bytes)``; the end (trailers, reset, lost connection) to
    ``on_end(failure or None)``."""

    def __init__(self, on_message: Any, on_end: Any) -> None:
        self.on_message = on_message
        self.on_end = on_end
        self.conn: Optional[Connection] = None
        self.sid = 0
        self.buf = bytearray()
        self.status: Optional[bytes] = None
        self.ended = False
        #: Messages written before the stream got its id (MAX_CONCURRENT_STREAMS).
        self.early: List[bytes] = []

    def open(self, conn: Connection, block: bytes) -> None:
        self.conn = conn
        conn.open_stream(self, block, None, end_stream=False)

    def opened(self, conn: Connection, sid: int) -> None:
        self.conn = conn
        self.sid = sid
        early, self.early = self.early, []
        for message in early:
            conn.send_data(sid, message, False)

    def write(self, message: bytes) -> bool:
        """Send one message; False when the stream has ended."""
        return self.write_framed(frame_message(message))

    def write_framed(self, framed: bytes) -> bool:
        """Send one message already framed (``frame_message``)."""
        if self.ended or self.conn is None:
            return False
        if not self.sid:
            self.early.append(framed)
            return True
        return self.conn.send_data(self.sid, framed, False)

    def close(self) -> None:
        if not self.ended and self.conn is not None and self.sid:
            self.conn.reset(self.sid, CANCEL)
        self._end(("probe", "cancelled", "the stream was closed by the client"))

    def _end(self, failure: Optional[Failure]) -> None:
        if not self.ended:
            self.ended = True
            self.on_end(failure)

    def on_headers(self, fields: List[Tuple[bytes, bytes]], end_stream: bool) -> None:
        status, grpc_status, message = answer_status(fields)
        if self.status is None:
            self.status = status
        if end_stream:
            failure = status_failure(self.status, grpc_status, message)
            self._end(failure or ("server", "OK", "the server ended the stream"))

    def on_data(self, payload: bytes, end_stream: bool) -> None:
        if not self.buf:  # fast path: whole messages in this frame, no copy to a buffer
            pos = 0
            end = len(payload)
            while end - pos >= 5 and not payload[pos]:
                size = _U32.unpack_from(payload, pos + 1)[0]
                if end - pos - 5 < size:
                    break
                self.on_message(payload[pos + 5:pos + 5 + size])
                pos += 5 + size
            if pos == end:
                if end_stream:
                    self._end(("server", "INTERNAL", "the stream ended without trailers"))
                return
            payload = payload[pos:]
        buf = self.buf
        buf += payload
        pos = 0
        end = len(buf)
        while end - pos >= 5:
            size = int.from_bytes(buf[pos + 1:pos + 5], "big")
            if end - pos - 5 < size:
                break
            if buf[pos]:
                self._end(("server", "INTERNAL", "a compressed message, which we did not "
                           "ask for"))
                return
            self.on_message(bytes(buf[pos + 5:pos + 5 + size]))
            pos += 5 + size
        if pos:
            del buf[:pos]
        if end_stream:
            self._end(("server", "INTERNAL", "the stream ended without trailers"))

    def on_reset(self, code: int) -> None:
        self._end(reset_failure(code))

    def on_lost(self, failure: Failure, retryable: bool) -> None:
        self._end(failure)

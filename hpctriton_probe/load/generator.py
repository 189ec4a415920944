"""The load generator: asyncio clients that keep Triton busy at a small CPU cost per
request, closed loop (a fixed number of requests in flight) and open loop (requests
due at times set by a schedule, latency measured from that time).

Why not tritonclient's own ``infer``: it builds a request object, serializes it and
parses the whole answer on every call; a load client that does so measures itself
as much as the server. Here every request is built once, before the load starts,
as the exact bytes that go on the wire, and answers are counted, not decoded:

* HTTP: a minimal HTTP/1.1 keep-alive client on asyncio (standard library), sending
  Triton's binary tensor extension (``Inference-Header-Content-Length``) and asking
  for binary outputs, one connection per request in flight;
* gRPC: the probe's own HTTP/2 client (:mod:`hpctriton_probe.load.grpc_engine`)
  sending the serialized ``ModelInferRequest`` of ``tritonclient.grpc.service_pb2``
  as bytes, the answer counted and left unparsed; streaming (``ModelStreamInfer``)
  with one stream per request in flight (closed loop) or one shared stream with
  request ids (open loop). A decoupled model's requests always go on streams, and
  each of its responses is read for its id, final flag and tokens: its answer is a
  ``tokens.StreamFigures`` (time to first token, gaps, tokens, end), which the
  recorder keeps in histograms beside the latency's.

Coordinated omission: in the open loop every request has its intended send time from
the schedule; its latency runs from that time, not from when the client got round to
sending it, so a server (or a client) that falls behind shows its queue in the
figures. The send lag itself is recorded separately.

Python 3.7 compatible. numpy and tritonclient are imported inside functions (worker
processes, :mod:`hpctriton_probe.load.workers`, import neither).
"""

import asyncio
import contextlib
import json
import random
import ssl
import time
import urllib.parse
from typing import Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from hpctriton_probe.load.hist import Histogram
from hpctriton_probe.load.stats import is_stable

#: Failure kinds after which a closed-loop sender pauses before trying again (a server
#: that refuses connections must not turn the client into a busy loop).
BACKOFF_KINDS = ("refused", "unreachable", "tls")
BACKOFF_S = 0.05
#: How often request deadlines are checked (HTTP and streams; unary gRPC has its own).
SWEEP_S = 0.1

#: The request parameter that makes Triton send an empty response with the final flag
#: when a decoupled model ends a request without one (tritonclient's
#: ``enable_empty_final_response``).
EMPTY_FINAL = "triton_enable_empty_final_response"

#: ``(kind, code, message)``: kind as in ``calls.CallFailure`` (server, timeout,
#: refused, unreachable, tls, probe), code an HTTP status or gRPC status name.
Failure = Tuple[str, str, str]
Sender = Callable[[bytes], Any]  # async (bytes) -> Optional[Failure]


# ------------------------------------------------------------------------ support


def missing_support(protocol: str, streaming: bool) -> Optional[str]:
    """Why this interpreter cannot drive ``protocol`` (None when it can): the gRPC load
    builds its requests with tritonclient's service messages (the HTTP/2 client is the
    probe's own, :mod:`hpctriton_probe.load.grpc_engine`)."""
    if protocol != "grpc":
        return None
    try:
        from tritonclient.grpc import service_pb2
    except ImportError as exc:
        return f"tritonclient.grpc.service_pb2 cannot be imported ({exc})"
    if streaming and not hasattr(service_pb2, "ModelStreamInferResponse"):
        return "this tritonclient has no gRPC streaming messages (ModelStreamInferResponse)"
    return None


# ------------------------------------------------------------------------ requests


def raw_tensor(datatype: str, array: Any) -> bytes:
    """The bytes of one tensor as Triton takes them raw (binary HTTP data and gRPC
    ``raw_input_contents``): little-endian values, BYTES as length-prefixed elements."""
    import numpy as np

    if datatype == "BYTES":
        from tritonclient.utils import serialize_byte_tensor

        out = serialize_byte_tensor(np.asarray(array, dtype=np.object_))
        return bytes(out.item()) if getattr(out, "size", 0) else b""
    if datatype == "BF16":
        try:
            from tritonclient.utils import serialize_bf16_tensor
        except ImportError:
            serialize_bf16_tensor = None
        if serialize_bf16_tensor is not None:
            out = serialize_bf16_tensor(array)
            return bytes(out.item()) if getattr(out, "size", 0) else b""
        bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32) >> 16
        return bits.astype("<u2").tobytes()
    arr = np.ascontiguousarray(array)
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return arr.tobytes()


def http_request(host: str, model: str, arrays: List[tuple],
                 headers: Optional[Dict[str, str]] = None) -> bytes:
    """A complete ``POST /v2/models/<model>/infer`` with binary inputs and outputs."""
    raws = [raw_tensor(dt, a) for _, dt, a in arrays]
    head = {"inputs": [{"name": name, "datatype": dt, "shape": [int(d) for d in a.shape],
                        "parameters": {"binary_data_size": len(raw)}}
                       for (name, dt, a), raw in zip(arrays, raws)],  # noqa: B905 - 3.8
            "parameters": {"binary_data_output": True}}
    header_json = json.dumps(head, separators=(",", ":")).encode("utf-8")
    body = header_json + b"".join(raws)
    lines = ["POST /v2/models/{}/infer HTTP/1.1".format(urllib.parse.quote(model, safe="")),
             f"Host: {host}", "Content-Type: application/octet-stream",
             f"Inference-Header-Content-Length: {len(header_json)}",
             f"Content-Length: {len(body)}"]
    for key, value in (headers or {}).items():
        if any(c in str(key) + str(value) for c in "\r\n"):
            raise ValueError(f"header {key!r} contains a line break")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def grpc_request(model: str, arrays: List[tuple], decoupled: bool = False) -> bytes:
    """A serialized ``ModelInferRequest`` (all outputs, returned raw). ``decoupled``:
    ask for the empty final response, so that the end of every request is known
    (``triton_final_response``), whatever the model sends last."""
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest()
    request.model_name = model
    if decoupled:
        request.parameters[EMPTY_FINAL].bool_param = True
    for name, datatype, array in arrays:
        tensor = request.inputs.add()
        tensor.name = name
        tensor.datatype = datatype
        tensor.shape.extend(int(d) for d in array.shape)
        request.raw_input_contents.append(raw_tensor(datatype, array))
    return request.SerializeToString()


class Target:
    """One model's pre-built requests, taken round robin (several when an input-data
    file has several entries, or a prompts file several prompts). ``stream``: a
    decoupled model's streamed answers are measured (``{"slo": [ttft_s, itl_s, e2e_s]
    or None}``)."""

    __slots__ = ("model", "requests", "inferences", "stream", "_i", "_n")

    def __init__(self, model: str, requests: List[bytes], inferences: int,
                 stream: Optional[Dict[str, Any]] = None) -> None:
        if not requests:
            raise ValueError("no requests")
        self.model = model
        self.requests = requests
        self.inferences = inferences
        self.stream = stream
        self._i = 0
        self._n = len(requests)

    def next(self) -> bytes:
        if self._n == 1:
            return self.requests[0]
        self._i = (self._i + 1) % self._n
        return self.requests[self._i]


# -------------------------------------------------------------------------- HTTP


class _HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time."""

    def __init__(self, engine: "HttpEngine") -> None:
        self.engine = engine
        self.transport: Any = None
        self.buf = bytearray()
        self.waiter: Optional[asyncio.Future] = None
        self.deadline = 0.0
        self.alive = True
        self._reset()

    def _reset(self) -> None:
        self.head_len = -1
        self.want = -1  # total response length once known
        self.status = 0
        self.chunked = False
        self.chunk_pos = 0
        self.until_close = False
        self.close_after = False

    # asyncio callbacks
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self.alive = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            if self.until_close and self.head_len >= 0:
                self.want = len(self.buf)
                self.waiter = waiter
                self._complete()
            else:
                reason = f": {exc}" if exc else ""
                waiter.set_result(("unreachable", "closed",
                                   f"the server closed the connection{reason}"))
        self.engine._forget(self)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.head_len < 0:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            self.head_len = end + 4
            try:
                self.status = int(head[9:12])
            except ValueError:
                self._fail("server", "bad-response", f"not an HTTP response: {bytes(buf[:40])!r}")
                return
            pos = head.find(b"\r\ncontent-length:")
            if pos >= 0:
                stop = head.find(b"\r\n", pos + 2)
                self.want = self.head_len + int(head[pos + 17:stop if stop > 0 else None])
            elif b"\r\ntransfer-encoding:" in head and b"chunked" in head:
                self.chunked = True
                self.chunk_pos = self.head_len
            else:
                self.until_close = True
            self.close_after = b"\r\nconnection: close" in head
        if self.chunked:
            self._chunks()
        elif self.want >= 0 and len(buf) >= self.want:
            self._complete()

    def _chunks(self) -> None:
        buf = self.buf
        while True:
            line_end = buf.find(b"\r\n", self.chunk_pos)
            if line_end < 0:
                return
            try:
                size = int(bytes(buf[self.chunk_pos:line_end]).split(b";")[0], 16)
            except ValueError:
                self._fail("server", "bad-response", "malformed chunked response")
                return
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return
                self.want = trailer_end + 4
                self._complete()
                return
            if len(buf) < line_end + 2 + size + 2:
                return
            self.chunk_pos = line_end + 2 + size + 2

    def _fail(self, kind: str, code: str, message: str) -> None:
        self.alive = False
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result((kind, code, message))
        if self.transport is not None:
            self.transport.abort()

    def _complete(self) -> None:
        status = self.status
        end = self.want
        result: Optional[Failure] = None
        if status != 200 or self.engine.capture:
            body = bytes(self.buf[self.head_len:end])
            if self.chunked:
                body = b"(chunked body)"
            if status != 200:
                result = ("server", str(status), _error_text(body, status))
            else:
                self.engine.capture = False
                self.engine.sample = (bytes(self.buf[:self.head_len]), body)
        close = self.close_after
        del self.buf[:end]
        self._reset()
        if self.buf:  # more bytes than one answer: the connection cannot be trusted
            close = True
            self.buf.clear()
        if close:
            self.alive = False
            self.transport.close()
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def request(self, data: bytes, deadline: float) -> asyncio.Future:
        waiter = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        self.deadline = deadline
        self.transport.write(data)
        return waiter


def _error_text(body: bytes, status: int) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        doc = json.loads(text)
        if isinstance(doc, dict) and "error" in doc:
            text = str(doc["error"])
    except ValueError:
        pass
    first = text.splitlines()[0] if text else f"HTTP {status}"
    return first[:300]


class HttpEngine:
    """A pool of keep-alive connections to one server: a request takes an idle
    connection, or opens one (up to ``max_connections``; beyond that it waits)."""

    def __init__(self, host: str, port: int, *, timeout_s: float,
                 ssl_context: Optional[ssl.SSLContext] = None,
                 max_connections: int = 1024) -> None:
        self.host = host.strip("[]")
        self.port = port
        self.timeout_s = timeout_s
        self.ssl_context = ssl_context
        self.max_connections = max(1, max_connections)
        self.idle: List[_HttpConnection] = []
        self.conns: Set[_HttpConnection] = set()
        self.opening = 0
        self.waiters: List[asyncio.Future] = []
        self.peak = 0
        self.pool_waits = 0
        self.capture = False
        self.sample: Optional[tuple] = None
        self._sweeper: Optional[asyncio.Task] = None

    def sender(self, lane: int) -> Sender:
        return self.send

    def _forget(self, conn: _HttpConnection) -> None:
        self.conns.discard(conn)
        if self.waiters and len(self.conns) + self.opening < self.max_connections:
            waiter = self.waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)  # may open a connection now

    async def _connect(self) -> Any:
        loop = asyncio.get_running_loop()
        self.opening += 1
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(
                lambda: _HttpConnection(self), self.host, self.port, ssl=self.ssl_context,
                server_hostname=self.host if self.ssl_context else None), self.timeout_s)
        except asyncio.TimeoutError:
            return ("timeout", "connect", f"no connection to {self.host}:{self.port} "
                    f"within {self.timeout_s:g} s")
        except ConnectionRefusedError:
            return ("refused", "refused", f"connection refused by {self.host}:{self.port}")
        except ssl.SSLError as exc:
            return ("tls", "tls", f"TLS failed: {exc}")
        except OSError as exc:
            return ("unreachable", type(exc).__name__, f"{self.host}:{self.port}: {exc}")
        finally:
            self.opening -= 1
        self.conns.add(conn)
        self.peak = max(self.peak, len(self.conns))
        if self._sweeper is None:
            self._sweeper = loop.create_task(self._sweep())
        return conn

    async def send(self, data: bytes) -> Optional[Failure]:
        idle = self.idle
        conn = None
        while idle:
            conn = idle.pop()
            if conn.alive:
                break
            conn = None
        if conn is None:
            while len(self.conns) + self.opening >= self.max_connections:
                self.pool_waits += 1
                waiter = asyncio.get_running_loop().create_future()
                self.waiters.append(waiter)
                await waiter
                if idle:
                    conn = idle.pop()
                    if conn.alive:
                        break
                    conn = None
            if conn is None:
                made = await self._connect()
                if isinstance(made, tuple):
                    return made
                conn = made
        result = await conn.request(data, time.perf_counter() + self.timeout_s)
        if conn.alive:
            if self.waiters:
                waiter = self.waiters.pop(0)
                idle.append(conn)
                if not waiter.done():
                    waiter.set_result(None)
            else:
                idle.append(conn)
        return result

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.perf_counter()
            for conn in list(self.conns):
                if conn.waiter is not None and conn.deadline < now:
                    # a late answer on this connection would be taken for the next one
                    conn._fail("timeout", "timeout", f"no answer within {self.timeout_s:g} s")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for conn in list(self.conns):
            if conn.transport is not None:
                conn.transport.close()
        self.conns.clear()
        self.idle = []

    def connections(self) -> int:
        return self.peak

    async def warm(self) -> None:
        """Open one connection before the load starts (see ``GrpcEngine.warm``)."""
        made = await self._connect()
        if not isinstance(made, tuple):
            self.idle.append(made)


def http_ssl_context(ca: Optional[str], cert: Optional[str], key: Optional[str],
                     verify: bool) -> ssl.SSLContext:
    """TLS for the HTTP load client: with ``verify`` the certificate must chain to
    ``ca`` (else the system's CAs) AND name the host connected to; without it, neither
    is checked (the configuration asked for that)."""
    from hpctriton_probe.net.h2 import client_ssl_context

    return client_ssl_context(ca, cert, key, verify, alpn=[])


# ----------------------------------------------------------------------- recording


class ModelRecorder:
    """One model's answers during one point: per measurement window (by completion
    time) the answers, errors and a latency histogram in microseconds; totals for the
    whole point (warm-up and drain included).

    Streamed answers (``stream``: a decoupled model) add to each window histograms of
    the time to first token, of the gaps between tokens and of the tokens per request
    (all of a request in the window it ended in), the output tokens, and with an SLO
    the requests that met it. A window is ``[ok, errors, latency (end to end), ttft,
    itl, tokens per request, output tokens, good]``."""

    __slots__ = ("model", "inferences", "m0", "inv_w", "limit", "windows", "sent", "ok",
                 "errors", "codes", "examples", "lag", "unanswered", "stream", "slo",
                 "bounds", "over")

    def __init__(self, model: str, inferences: int, m0: float, window_s: float,
                 max_windows: int, open_loop: bool,
                 stream: Optional[Dict[str, Any]] = None,
                 bounds: Optional[Tuple[Optional[float], ...]] = None) -> None:
        self.stream = stream is not None
        #: A capacity search's objective, ``(latency, ttft, mean itl)`` in seconds (None:
        #: no bound): each window counts, exactly, the answers over any bound.
        self.bounds = bounds
        self.over: List[int] = []
        slo = (stream or {}).get("slo")
        #: (ttft, mean itl, e2e) bounds in seconds (None: no bound), or None.
        self.slo: Optional[Tuple[Optional[float], ...]] = tuple(slo) if slo else None
        self.model = model
        self.inferences = inferences
        self.m0 = m0
        self.inv_w = 1.0 / window_s
        self.limit = max_windows
        self.windows: List[list] = []  # [ok, errors, Histogram]
        self.sent = 0
        self.ok = 0
        self.errors: Dict[str, int] = {}
        self.codes: Dict[str, int] = {}
        self.examples: Dict[str, str] = {}
        self.lag = Histogram() if open_loop else None
        self.unanswered = 0

    def _window(self, index: int) -> list:
        windows = self.windows
        while len(windows) <= index:
            if self.stream:
                windows.append([0, {}, Histogram(), Histogram(), Histogram(), Histogram(),
                                0, 0])
            else:
                windows.append([0, {}, Histogram()])
        return windows[index]

    def done(self, t0: float, t1: float, failure: Any) -> None:
        """A request sent at ``t0`` (open loop: due) ended at ``t1``: ``failure`` is
        None (answered), a ``Failure``, or a streamed answer's ``StreamFigures``."""
        pos = (t1 - self.m0) * self.inv_w
        if failure is None:
            self.ok += 1
            if pos >= 0.0:
                index = int(pos)
                if index < self.limit:
                    w = self._window(index)
                    w[0] += 1
                    w[2].record(int((t1 - t0) * 1e6))
                    bounds = self.bounds
                    if (bounds is not None and bounds[0] is not None
                            and t1 - t0 > bounds[0]):
                        self._over(index)
            return
        if failure.__class__ is not tuple:
            self._streamed(t0, failure)
            return
        kind, code, message = failure
        self.errors[kind] = self.errors.get(kind, 0) + 1
        self.codes[code] = self.codes.get(code, 0) + 1
        if kind not in self.examples:
            self.examples[kind] = message
        if pos >= 0.0 and int(pos) < self.limit:
            errs = self._window(int(pos))[1]
            errs[kind] = errs.get(kind, 0) + 1

    def _streamed(self, t0: float, figures: Any) -> None:
        """A streamed request ended well: everything of it goes to the window of its
        end (its final response)."""
        self.ok += 1
        end = figures.end
        pos = (end - self.m0) * self.inv_w
        if pos < 0.0 or int(pos) >= self.limit:
            return
        w = self._window(int(pos))
        w[0] += 1
        e2e = end - t0
        bounds = self.bounds
        if bounds is not None:
            lat_b, ttft_b, itl_b = bounds
            first_ = figures.first
            gaps_ = figures.gaps
            if ((lat_b is not None and e2e > lat_b)
                    or (ttft_b is not None and (first_ is None or first_ - t0 > ttft_b))
                    or (itl_b is not None and gaps_ and sum(gaps_) / len(gaps_) > itl_b)):
                self._over(int(pos))
        w[2].record(int(e2e * 1e6))
        first = figures.first
        if first is not None:
            w[3].record(int((first - t0) * 1e6))
        gaps = figures.gaps
        if gaps:
            record = w[4].record
            for gap in gaps:
                record(int(gap * 1e6))
        w[5].record(figures.tokens)
        w[6] += figures.tokens
        slo = self.slo
        if slo is not None:
            ttft, itl, e2e_bound = slo
            if ((ttft is None or (first is not None and first - t0 <= ttft))
                    and (e2e_bound is None or e2e <= e2e_bound)
                    and (itl is None or not gaps or sum(gaps) / len(gaps) <= itl)):
                w[7] += 1

    def _over(self, index: int) -> None:
        over = self.over
        while len(over) <= index:
            over.append(0)
        over[index] += 1

    def window_means(self, count: int) -> List[Tuple[int, Optional[float]]]:
        return [(w[0], w[2].mean()) for w in (self._window(i) for i in range(count))]

    def to_json(self, windows_run: int) -> dict:
        windows = [self._window(i) for i in range(windows_run)]
        out_windows = [{"ok": w[0], "errors": dict(w[1]), "hist": w[2].to_json()}
                       for w in windows]
        if self.stream:
            for doc, w in zip(out_windows, windows):  # noqa: B905 - Python 3.7
                doc.update(ttft=w[3].to_json(), itl=w[4].to_json(), tokens=w[5].to_json(),
                           out_tokens=w[6], good=w[7])
        if self.bounds is not None:
            over = self.over
            for i, doc in enumerate(out_windows):
                doc["over"] = over[i] if i < len(over) else 0
        return {"inferences_per_request": self.inferences,
                "windows": out_windows,
                "sent": self.sent, "ok": self.ok, "errors": dict(self.errors),
                "error_codes": dict(self.codes), "error_examples": dict(self.examples),
                "unanswered": self.unanswered,
                **({"lag": self.lag.to_json()} if self.lag is not None else {})}


# -------------------------------------------------------------------------- points


def schedule_times(start: float, rate: float, kind: str, phase: float = 0.0,
                   seed: Any = None) -> Iterator[float]:
    """Intended send times from ``start`` at ``rate`` per second: evenly spaced (shifted
    by ``phase`` of a gap, so several tasks interleave) or a Poisson process."""
    if kind == "poisson":
        rng = random.Random(repr(seed))  # a str seed is stable across runs and versions
        t = start
        while True:
            t += rng.expovariate(rate)
            yield t
    gap = 1.0 / rate
    i = 0
    while True:
        yield start + (i + phase) * gap
        i += 1


async def sleep_until(t: float) -> None:
    """Sleep until ``time.perf_counter()`` reaches ``t`` (never wakes early)."""
    while True:
        delay = t - time.perf_counter()
        if delay <= 0:
            return
        await asyncio.sleep(delay)


class PointPlan:
    """When and how one point runs (times on the ``time.perf_counter`` clock)."""

    def __init__(self, *, mode: str, value: float, start: float, warmup_s: float,
                 window_s: float, max_windows: int, stable_windows: int, percent: float,
                 early_stop: bool, drain_s: float, schedule: str = "constant",
                 phase: float = 0.0, seed: Any = None,
                 bounds: Optional[Tuple[Optional[float], ...]] = None) -> None:
        self.mode = mode
        self.value = value
        self.start = start
        self.warmup_s = warmup_s
        self.window_s = window_s
        self.max_windows = max_windows
        self.stable_windows = stable_windows
        self.percent = percent
        self.early_stop = early_stop
        self.drain_s = drain_s
        self.schedule = schedule
        self.phase = phase
        self.seed = seed
        #: A capacity search's bounds (``ModelRecorder.bounds``), or None.
        self.bounds = tuple(bounds) if bounds is not None else None

    @property
    def m0(self) -> float:
        return self.start + self.warmup_s


class _State:
    def __init__(self, stop_at: float) -> None:
        self.stop_at = stop_at
        self.inflight = 0
        self.tasks: Set[asyncio.Task] = set()
        self.idle: Optional[asyncio.Future] = None

    def finished_one(self) -> None:
        self.inflight -= 1
        if self.inflight == 0 and self.idle is not None and not self.idle.done():
            self.idle.set_result(None)


async def _closed_sender(rec: ModelRecorder, send: Sender, target: Target,
                         state: _State) -> None:
    pc = time.perf_counter
    while pc() < state.stop_at:
        data = target.next()
        rec.sent += 1
        state.inflight += 1
        t0 = pc()
        failure = await send(data)
        rec.done(t0, pc(), failure)
        state.finished_one()
        if (failure is not None and failure.__class__ is tuple
                and failure[0] in BACKOFF_KINDS):
            await asyncio.sleep(BACKOFF_S)


async def _open_one(rec: ModelRecorder, send: Sender, data: bytes, due: float,
                    state: _State) -> None:
    pc = time.perf_counter
    lag = rec.lag
    if lag is not None:
        lag.record(int((pc() - due) * 1e6))
    failure = await send(data)
    rec.done(due, pc(), failure)
    state.finished_one()


async def _open_dispatch(rec: ModelRecorder, send: Sender, target: Target, state: _State,
                         times: Iterator[float]) -> None:
    loop = asyncio.get_running_loop()
    pc = time.perf_counter
    tasks = state.tasks
    behind = 0
    for due in times:
        if due >= state.stop_at:
            return
        if due > pc():
            behind = 0
            await sleep_until(due)
            if due >= state.stop_at:
                return
        else:
            behind += 1
            if behind % 64 == 0:  # far behind schedule: let answers in all the same
                await asyncio.sleep(0)
        rec.sent += 1
        state.inflight += 1
        task = loop.create_task(_open_one(rec, send, target.next(), due, state))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def cpu_s() -> float:
    """This process's CPU time (user + system), seconds."""
    try:
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    except ImportError:  # pragma: no cover - not a Unix
        return time.process_time()


class PointControl:
    """How a worker process takes part in a point its coordinator decides about
    (:mod:`hpctriton_probe.load.workers`): told about the end of the warm-up and of
    each window, and stopped from outside instead of by its own stability rule."""

    def __init__(self) -> None:
        self.stop_after: Optional[int] = None
        self._wake: Optional[asyncio.Future] = None

    def warmup(self, figures: Dict[str, Any]) -> None:
        """The warm-up ended: CPU, wall time and answers so far."""

    def window(self, done: int, recorders: Dict[str, "ModelRecorder"]) -> None:
        """Window ``done - 1`` ended."""

    def stop(self, windows_run: int) -> None:
        """Called from the event loop: end the point after ``windows_run`` windows."""
        self.stop_after = windows_run
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def wait_until(self, t: float) -> None:
        """Sleep until ``t``, or until :meth:`stop`."""
        if self.stop_after is not None:
            return
        self._wake = asyncio.get_running_loop().create_future()
        try:
            delay = t - time.perf_counter()
            if delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._wake), delay)
        finally:
            self._wake = None
        if self.stop_after is None:
            await sleep_until(t)


async def run_point(plan: PointPlan, targets: List[Target], engines: Dict[str, Any],
                    control: Optional[PointControl] = None) -> dict:
    """Drive every target at ``plan.value`` from ``plan.start``: warm-up, measurement
    windows until the stability rule holds (with ``early_stop``; a worker's
    ``control`` decides instead) or ``max_windows``, then wait for the answers still
    out (at most ``drain_s``). Returns the point's windows per model, ready for
    ``loadstats``, and ``warmup``: this process's CPU and answers in the warm-up (the
    client's self-check)."""
    m0 = plan.m0
    open_loop = plan.mode == "request_rate"
    recorders = {t.model: ModelRecorder(t.model, t.inferences, m0, plan.window_s,
                                        plan.max_windows, open_loop, t.stream, plan.bounds)
                 for t in targets}
    state = _State(m0 + plan.max_windows * plan.window_s)
    loop = asyncio.get_running_loop()
    await sleep_until(plan.start)
    late_s = max(0.0, time.perf_counter() - plan.start)
    cpu0 = cpu_s()
    t0 = time.perf_counter()
    senders = []
    for index, target in enumerate(targets):
        engine = engines[target.model]
        rec = recorders[target.model]
        if open_loop:
            if plan.value <= 0:
                continue
            times = schedule_times(plan.start, float(plan.value), plan.schedule,
                                   phase=plan.phase, seed=(plan.seed, index))
            senders.append(loop.create_task(_open_dispatch(
                rec, engine.sender(-1), target, state, times)))
        else:
            for lane in range(int(plan.value)):
                senders.append(loop.create_task(_closed_sender(
                    rec, engine.sender(lane), target, state)))
    warmup: Optional[Dict[str, Any]] = None
    if plan.warmup_s > 0:
        if control is not None:
            await control.wait_until(m0)
        else:
            await sleep_until(m0)
        warmup = {"cpu_s": round(cpu_s() - cpu0, 6),
                  "wall_s": round(time.perf_counter() - t0, 6),
                  "answered": sum(r.ok + sum(r.errors.values()) for r in recorders.values())}
        if control is not None:
            control.warmup(warmup)
    windows_run = plan.max_windows
    stopped_early = False
    for i in range(plan.max_windows):
        if control is not None:
            if control.stop_after is not None:
                break
            await control.wait_until(m0 + (i + 1) * plan.window_s)
            if control.stop_after is not None:
                break
            control.window(i + 1, recorders)
            continue
        await sleep_until(m0 + (i + 1) * plan.window_s)
        done = i + 1
        if (plan.early_stop and plan.stable_windows <= done < plan.max_windows
                and all(is_stable(r.window_means(done)[done - plan.stable_windows:],
                                  plan.percent) for r in recorders.values())):
            windows_run = done
            stopped_early = True
            break
    if control is not None and control.stop_after is not None:
        windows_run = min(plan.max_windows, control.stop_after)
        stopped_early = windows_run < plan.max_windows
    state.stop_at = m0 + windows_run * plan.window_s
    for rec in recorders.values():
        rec.limit = windows_run
    if open_loop:  # nothing more is due; what was sent is in state.tasks
        for task in senders:
            task.cancel()
    if state.inflight > 0:
        state.idle = loop.create_future()
        with contextlib.suppress(asyncio.TimeoutError):  # unanswered: counted below
            await asyncio.wait_for(asyncio.shield(state.idle), plan.drain_s)
    leftovers = [t for t in senders + list(state.tasks) if not t.done()]
    for task in leftovers:
        task.cancel()
    if senders or leftovers:
        outcomes = await asyncio.gather(*(senders + leftovers), return_exceptions=True)
        crashed = [o for o in outcomes if isinstance(o, Exception)
                   and not isinstance(o, asyncio.CancelledError)]
        if crashed:  # a bug in the load generator: never report its figures as the server's
            raise crashed[0]
    for rec in recorders.values():
        rec.unanswered = max(0, rec.sent - rec.ok - sum(rec.errors.values()))
    return {"windows_run": windows_run, "stopped_early": stopped_early,
            "late_s": round(late_s, 4), "warmup": warmup,
            "models": {m: r.to_json(windows_run) for m, r in recorders.items()}}

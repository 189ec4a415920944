"""The load generator's HTTP client against tiny local servers that answer in the ways a
proxy or a sick server may: chunked, closing, silent, refusing."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from hpctriton_probe.load.generator import HttpEngine, ModelRecorder, schedule_times

REQUEST = b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"


async def serve(handler: object) -> tuple[asyncio.AbstractServer, int]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)  # type: ignore[arg-type]
    return server, server.sockets[0].getsockname()[1]


async def read_request(reader: asyncio.StreamReader) -> bool:
    try:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        return True
    except (asyncio.IncompleteReadError, ConnectionError):
        return False


def test_chunked_and_closing_answers_are_read_and_the_pool_reconnects() -> None:
    seen = {"connections": 0}

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen["connections"] += 1
        answers = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n",
                   b"HTTP/1.1 400 Bad Request\r\nContent-Length: 17\r\n"
                   b"Connection: close\r\n\r\n{\"error\":\"nope\"}\n"]
        for answer in answers:
            if not await read_request(reader):
                break
            writer.write(answer)
            await writer.drain()
        writer.close()

    async def main() -> list:
        server, port = await serve(handler)
        engine = HttpEngine("127.0.0.1", port, timeout_s=2)
        engine.capture = True
        out = [await engine.send(REQUEST) for _ in range(3)]
        sample = engine.sample
        await engine.close()
        server.close()
        return [out, sample]

    (first, second, third), sample = asyncio.run(main())
    assert first is None and sample is not None
    assert second == ("server", "400", "nope")
    assert third is None  # the closed connection was replaced
    assert seen["connections"] == 2


def test_silent_server_times_out_and_refusal_is_reported() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def main() -> tuple:
        server, port = await serve(silent)
        engine = HttpEngine("127.0.0.1", port, timeout_s=0.3)
        t0 = time.monotonic()
        late = await engine.send(REQUEST)
        waited = time.monotonic() - t0
        await engine.close()
        server.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            free = s.getsockname()[1]
        refused = await HttpEngine("127.0.0.1", free, timeout_s=1).send(REQUEST)
        return late, waited, refused

    late, waited, refused = asyncio.run(main())
    assert late is not None and late[0] == "timeout"
    assert 0.25 < waited < 1.0
    assert refused is not None and refused[0] == "refused"


def test_recorder_puts_answers_in_windows_by_arrival_and_keeps_totals() -> None:
    rec = ModelRecorder("m", 2, m0=10.0, window_s=1.0, max_windows=2, open_loop=True)
    for t1 in (9.5, 10.2, 10.4, 11.5, 12.5):  # warm-up, window 0 twice, window 1, drain
        rec.sent += 1
        rec.done(t1 - 0.01, t1, None)
    rec.sent += 1
    rec.done(10.0, 10.6, ("timeout", "timeout", "late"))
    doc = rec.to_json(2)
    assert [w["ok"] for w in doc["windows"]] == [2, 1]
    assert doc["windows"][0]["errors"] == {"timeout": 1}
    assert (doc["sent"], doc["ok"], doc["errors"]) == (6, 5, {"timeout": 1})
    assert doc["inferences_per_request"] == 2 and "lag" in doc


@pytest.mark.parametrize("kind", ["constant", "poisson"])
def test_schedules_keep_their_rate(kind: str) -> None:
    times = schedule_times(100.0, 200.0, kind, phase=0.5, seed=(1, 2, 3))
    got = [next(times) for _ in range(2000)]
    assert all(b >= a for a, b in zip(got, got[1:], strict=False))
    assert (got[-1] - 100.0) == pytest.approx(10.0, rel=0.1)
    again = schedule_times(100.0, 200.0, kind, phase=0.5, seed=(1, 2, 3))
    assert [next(again) for _ in range(5)] == got[:5]  # reproducible
    if kind == "constant":
        assert got[0] == pytest.approx(100.0025)  # half a gap: tasks interleave

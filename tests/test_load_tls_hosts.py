"""Host names are checked whenever ``verify: true``: an HTTPS (or gRPC-over-TLS)
endpoint whose certificate is valid, from a trusted CA, but names ANOTHER host must be
refused before a request (and its token) is sent. Also with ``ca: null``, where the
system's CAs decide (here: ``SSL_CERT_FILE`` pointing at the test CA, as a site's
public CA would)."""

from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures_triton import TLSFiles

from hpctriton_probe.load.generator import HttpEngine, http_ssl_context
from hpctriton_probe.load.grpc_engine import GrpcEngine
from hpctriton_probe.net.h2 import client_ssl_context

REQUEST = (b"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRET\r\n"
           b"Content-Length: 2\r\n\r\nhi")


@pytest.fixture(scope="module")
def other_host_cert(tls_files: TLSFiles) -> Iterator[tuple[str, str]]:
    """A certificate from the test CA for ``other-host.example`` only."""
    folder = tls_files.folder
    ext = os.path.join(folder, "other.ext")
    with open(ext, "w") as fh:
        fh.write("basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
                 "subjectAltName=DNS:other-host.example\nkeyUsage=critical,digitalSignature\n"
                 "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True,
                       timeout=60)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "other.key", "-out", "other.csr", "-subj", "/CN=other-host.example")
    openssl("x509", "-req", "-in", "other.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "other.crt", "-days", "2", "-extfile", "other.ext")
    yield os.path.join(folder, "other.crt"), os.path.join(folder, "other.key")


async def serve(cert: tuple[str, str], seen: list[bytes]) -> tuple[Any, int]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await reader.read(65536)
            seen.append(data)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            await reader.read(1)
        except (ConnectionError, ssl.SSLError):
            pass
        writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0, ssl=ctx)
    return server, server.sockets[0].getsockname()[1]


@pytest.mark.parametrize("ca", ["given", "system"])
def test_https_load_refuses_a_certificate_for_another_host(
        ca: str, tls_files: TLSFiles, other_host_cert: tuple[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    if ca == "system":
        monkeypatch.setenv("SSL_CERT_FILE", tls_files.ca)

    async def main() -> tuple:
        seen: list[bytes] = []
        server, port = await serve(other_host_cert, seen)
        cafile = tls_files.ca if ca == "given" else None
        strict = HttpEngine("127.0.0.1", port, timeout_s=3,
                            ssl_context=http_ssl_context(cafile, None, None, True))
        refused = await strict.send(REQUEST)
        await strict.close()
        loose = HttpEngine("127.0.0.1", port, timeout_s=3,
                           ssl_context=http_ssl_context(cafile, None, None, False))
        allowed = await loose.send(REQUEST)
        await loose.close()
        server.close()
        return refused, allowed, seen
    refused, allowed, seen = asyncio.run(asyncio.wait_for(main(), 20))
    assert refused is not None and refused[0] == "tls", refused
    assert "hostname" in refused[2].lower() or "match" in refused[2].lower(), refused
    assert allowed is None  # verify: false asked for no checks, and gets none
    assert len(seen) == 1 and b"Bearer SECRET" in seen[0]  # only the verify-false request


def test_grpc_load_refuses_a_certificate_for_another_host(
        tls_files: TLSFiles, other_host_cert: tuple[str, str]) -> None:
    async def main() -> tuple:
        seen: list[bytes] = []
        server, port = await serve(other_host_cert, seen)
        engine = GrpcEngine("127.0.0.1", port, timeout_s=3, headers={"authorization": "t"},
                            ssl_context=client_ssl_context(tls_files.ca, None, None, True))
        result = await engine.send(b"x")
        await engine.close()
        server.close()
        return result, seen
    result, seen = asyncio.run(asyncio.wait_for(main(), 20))
    assert result is not None and result[0] == "tls", result
    assert seen == []

"""First contact: does each endpoint of the server answer at all? All at once.

A server that accepts TCP connections and never answers (hung, or a firewall that
swallows packets) costs one timeout per endpoint however the checks call it; asked one
after another, the HTTP, gRPC and metrics endpoints would cost three. So before the
checks, the runner asks every endpoint the checks will use, each in its own thread,
with the smallest timeout of those checks, for one byte of any answer:

* HTTP and metrics: ``GET <path>`` (no headers: nothing secret is sent), first byte;
* gRPC: the HTTP/2 connection preface and an empty SETTINGS frame, first byte (the
  server's own SETTINGS);
* over TLS the same after the handshake (ALPN ``h2`` for gRPC). The handshake does not
  verify the certificate and presents none: only whether bytes come back is asked, and
  nothing secret is sent; the checks themselves verify as configured.

Only a timeout counts as *silent*. A refusal (a server still starting), an unknown host,
a TLS failure or an answer of any kind is left to the checks, which report it as they
always do. Endpoints a proxy from the environment would carry (gRPC and urllib honour
``*_proxy``) are not asked: a direct connection says nothing about the proxied one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
import urllib.request
from typing import Dict, List, NamedTuple, Optional

#: The client's HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113, 3.4).
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


class Target(NamedTuple):
    """One endpoint to ask: ``kind`` is http, grpc or metrics; ``path`` for HTTP."""

    endpoint: str
    kind: str
    host: str
    port: int
    timeout_s: float
    tls: bool = False
    path: str = "/v2/health/live"


class Outcome(NamedTuple):
    endpoint: str
    silent: bool
    elapsed_s: float
    #: What happened, for probe.log: "answered", "timeout", "refused", …
    detail: str


def _proxied(kind: str, host: str) -> bool:
    if kind == "http":
        return False  # tritonclient's HTTP client (geventhttpclient) uses no proxy
    names = ["grpc_proxy", "https_proxy", "http_proxy"] if kind == "grpc" else ["http_proxy"]
    if not any(os.environ.get(n) or os.environ.get(n.upper()) for n in names):
        return False
    try:
        return not urllib.request.proxy_bypass(host)
    except Exception:  # noqa: BLE001 - unsure: do not ask
        return True


def _request(target: Target) -> bytes:
    if target.kind == "grpc":
        return H2_PREFACE
    bare = target.host.strip("[]")
    host = f"[{bare}]" if ":" in bare else bare
    return (f"GET {target.path} HTTP/1.1\r\nHost: {host}:{target.port}\r\n"
            "Connection: close\r\n\r\n").encode("ascii", "replace")


def ask(target: Target) -> Outcome:
    """Ask one endpoint; never raises."""
    started = time.monotonic()

    def left() -> float:
        return max(0.001, target.timeout_s - (time.monotonic() - started))

    def outcome(silent: bool, detail: str) -> Outcome:
        return Outcome(target.endpoint, silent, round(time.monotonic() - started, 3), detail)

    sock: Optional[socket.socket] = None
    try:
        sock = socket.create_connection((target.host.strip("[]"), target.port),
                                        timeout=left())
        if target.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # only "are bytes coming back?"
            if target.kind == "grpc":
                context.set_alpn_protocols(["h2"])
            sock.settimeout(left())
            sock = context.wrap_socket(sock, server_hostname=target.host.strip("[]"))
        sock.settimeout(left())
        sock.sendall(_request(target))
        sock.settimeout(left())
        sock.recv(1)  # b"" (closed) is an answer too
        return outcome(False, "answered")
    except socket.timeout:  # noqa: UP041 - before Python 3.10 it is not TimeoutError
        return outcome(True, "timeout")
    except ConnectionRefusedError:
        return outcome(False, "refused")
    except ssl.SSLError as exc:
        return outcome(False, f"TLS: {exc}")
    except OSError as exc:
        return outcome(False, f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # noqa: BLE001 - the checks report what is wrong
        return outcome(False, f"{type(exc).__name__}: {exc}")
    finally:
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def first_contact(targets: List[Target]) -> Dict[str, Outcome]:
    """Ask every target at once (proxied ones are left out); their outcomes by endpoint.
    Returns within the largest timeout (plus a little), whatever the network does."""
    asked = [t for t in targets if not _proxied(t.kind, t.host)]
    results: Dict[str, Outcome] = {}

    def run(target: Target) -> None:
        results[target.endpoint] = ask(target)

    threads = [threading.Thread(target=run, args=(t,), name="hpctriton-contact", daemon=True)
               for t in asked]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + max((t.timeout_s for t in asked), default=0.0) + 1.0
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return dict(results)

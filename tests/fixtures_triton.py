"""Real Triton servers (and an HTTPS proxy in front of one) for the probe's tests.

Each server is started once per test session by ``hpctriton.testing.start_triton``
from the ``nvidia-pytriton`` wheel, on free loopback ports:

* ``triton``: every demo model, plain HTTP and gRPC, metrics on;
* ``triton_tls``: ``simple`` only, gRPC over TLS (``--grpc-use-ssl``) with certificates
  made by the ``openssl`` CLI;
* ``triton_mtls``: the same with mutual TLS (the client must show a certificate);
* ``triton_restricted``: health, metadata, config, inference and statistics answer only
  requests carrying ``x-key: secret`` (HTTP) / ``triton-grpc-protocol-x-key: secret``
  (gRPC);
* ``https_proxy``: Debian's nginx terminating HTTPS in front of ``triton``'s HTTP port.

A service that cannot start calls ``unavailable``: a skip on a laptop, a failure in CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from service_policy import unavailable
from services.common import START_DEADLINE_S

from hpctriton.testing import TritonServer, TritonServerError, free_port, start_triton
from hpctriton_probe.spec import TaskSpec, from_dict

__all__ = [
    "server_success",
    "silent_port",
    "hangs_after_greeting",
    "TLSFiles",
    "HTTPSProxy",
    "tls_files",
    "triton",
    "triton_tls",
    "triton_mtls",
    "triton_restricted",
    "https_proxy",
    "RESTRICTED_KEY",
    "RESTRICTED_VALUE",
    "probe_task",
]

RESTRICTED_KEY = "x-key"
RESTRICTED_VALUE = "secret"
_RESTRICTED_APIS = "health,metadata,model-config,inference,statistics"


@dataclass
class TLSFiles:
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client one."""

    folder: str
    ca: str
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    other_ca: str  # a CA that signed nothing here: verification must fail with it


def _openssl(*args: str, cwd: str) -> None:
    done = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {done.stderr.strip()}")


def make_tls_files(folder: str) -> TLSFiles:
    """Certificates by the openssl CLI (EC P-256: quick to make, accepted everywhere).

    Strictly RFC 5280 (CA key usage, key identifiers): Python 3.13 verifies with
    ``VERIFY_X509_STRICT`` and refuses a CA without ``keyUsage``.
    """
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other_ca"):
        _openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.crt",
                 "-days", "2", "-subj", f"/CN=hpctriton test {ca}",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=folder)
    for name, usage, san in (("server", "serverAuth", "IP:127.0.0.1,DNS:localhost"),
                             ("client", "clientAuth", "DNS:hpctriton-client")):
        with open(os.path.join(folder, f"{name}.ext"), "w") as fh:
            fh.write(f"basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"
                     f"subjectAltName={san}\nkeyUsage=critical,digitalSignature\n"
                     "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n")
        _openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=folder)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=folder)

    def path(name: str) -> str:
        return os.path.join(folder, name)

    return TLSFiles(folder, path("ca.crt"), path("server.crt"), path("server.key"),
                    path("client.crt"), path("client.key"), path("other_ca.crt"))


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    if shutil.which("openssl") is None:
        unavailable("openssl", "the openssl CLI is not installed (apt-get install openssl)")
    folder = str(tmp_path_factory.mktemp("tls"))
    try:
        return make_tls_files(folder)
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        unavailable("openssl", str(exc))
        raise  # unreachable: unavailable() skips or fails


def _start(name: str, **kwargs: object) -> TritonServer:
    try:
        return start_triton(ready_timeout_s=START_DEADLINE_S, **kwargs)  # type: ignore[arg-type]
    except TritonServerError as exc:
        unavailable(name, str(exc))
        raise  # unreachable: unavailable() skips or fails


@pytest.fixture(scope="session")
def triton() -> Iterator[TritonServer]:
    """Every demo model (see ``hpctriton.testing``)."""
    server = _start("tritonserver")
    yield server
    server.terminate()  # stop() waits for it at exit, side by side with the others


@pytest.fixture(scope="session")
def triton_tls(tls_files: TLSFiles) -> Iterator[TritonServer]:
    server = _start("tritonserver (gRPC TLS)", models=["simple"], extra_args=[
        "--grpc-use-ssl=true", f"--grpc-server-cert={tls_files.server_cert}",
        f"--grpc-server-key={tls_files.server_key}"])
    yield server
    server.terminate()  # stop() waits for it at exit, side by side with the others


@pytest.fixture(scope="session")
def triton_mtls(tls_files: TLSFiles) -> Iterator[TritonServer]:
    server = _start("tritonserver (gRPC mutual TLS)", models=["simple"], extra_args=[
        "--grpc-use-ssl-mutual=true", f"--grpc-server-cert={tls_files.server_cert}",
        f"--grpc-server-key={tls_files.server_key}", f"--grpc-root-cert={tls_files.ca}"])
    yield server
    server.terminate()  # stop() waits for it at exit, side by side with the others


@pytest.fixture(scope="session")
def triton_restricted() -> Iterator[TritonServer]:
    """APIs that answer only with the header; health too, so readiness needs it."""
    setting = f"{_RESTRICTED_APIS}:{RESTRICTED_KEY}={RESTRICTED_VALUE}"
    server = _start("tritonserver (restricted APIs)", models=["simple"],
                    ready_headers={RESTRICTED_KEY: RESTRICTED_VALUE},
                    extra_args=[f"--http-restricted-api={setting}",
                                f"--grpc-restricted-protocol={setting}"])
    yield server
    server.terminate()  # stop() waits for it at exit, side by side with the others


@dataclass
class HTTPSProxy:
    """nginx terminating TLS at ``host:port`` and passing requests to ``upstream``."""

    host: str
    port: int
    upstream: str
    ca: str
    process: subprocess.Popen
    folder: str

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def log_tail(self) -> str:
        try:
            with open(os.path.join(self.folder, "error.log")) as fh:
                return "".join(fh.readlines()[-20:])
        except OSError:
            return "(no error.log)"


def _nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if os.path.isfile(p)), None)


def _wait_port(host: str, port: int, process: subprocess.Popen, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def https_proxy(triton: TritonServer, tls_files: TLSFiles,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[HTTPSProxy]:
    nginx = _nginx_binary()
    if nginx is None:
        unavailable("nginx", "nginx is not installed (apt-get install nginx-light or nginx)")
    folder = str(tmp_path_factory.mktemp("nginx"))
    port = free_port()
    temp_dirs = "\n".join(f"    {kind}_temp_path {folder}/{kind};"
                          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root root;\n" if os.geteuid() == 0 else ""
    conf = f"""{user}pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
worker_processes 1;
events {{ worker_connections 64; }}
http {{
    access_log {folder}/access.log;
{temp_dirs}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {tls_files.server_cert};
        ssl_certificate_key {tls_files.server_key};
        location / {{
            proxy_pass http://{triton.http_url};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_read_timeout 60s;
        }}
    }}
}}
"""
    conf_path = os.path.join(folder, "nginx.conf")
    with open(conf_path, "w") as fh:
        fh.write(conf)
    process = subprocess.Popen([nginx, "-p", folder, "-c", conf_path, "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    proxy = HTTPSProxy("127.0.0.1", port, triton.http_url, tls_files.ca, process, folder)
    if not _wait_port("127.0.0.1", port, process, START_DEADLINE_S):
        process.kill()
        process.wait(5)
        unavailable("nginx", f"nginx did not start on port {port}:\n{proxy.log_tail()}")
    yield proxy
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def probe_task(server: TritonServer | None = None, *, models: Sequence[str] = ("simple",),
               checks: Sequence[Any] | None = None, host: str = "127.0.0.1",
               http_port: int | None = None, grpc_port: int | None = None,
               metrics_port: int | None = None, tls: dict | None = None,
               headers: dict | None = None, probe: dict | None = None) -> TaskSpec:
    """A validated ``TaskSpec`` for ``server`` (its ports unless given).

    ``checks`` are names or ``(name, options)`` pairs; default: the default suite.
    """
    if server is not None:
        http_port = http_port or server.http_port
        grpc_port = grpc_port or server.grpc_port
        metrics_port = metrics_port or server.metrics_port
    names = checks if checks is not None else [
        "health", "metadata", "keepalive", "infer", "statistics", "metrics"]
    data = {
        "task": 0,
        "server": {"host": host, "http_port": http_port, "grpc_port": grpc_port,
                   "metrics_port": metrics_port, "tls": tls, "headers": headers or {}},
        "models": list(models),
        "checks": [{"name": c} if isinstance(c, str) else {"name": c[0], "options": c[1]}
                   for c in names],
        "probe": {"timeout_s": 10, "retries": 2, "retry_backoff_s": 0.2, **(probe or {})},
    }
    return from_dict(TaskSpec, data)


@pytest.fixture(scope="session")
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung server, a firewall):
    checks must fail at their timeout there, never hang."""
    with tcp_listener() as port:
        yield port


@pytest.fixture(scope="session")
def hangs_after_greeting() -> Iterator[int]:
    """A port that greets every connection and then never answers: an HTTP/2 SETTINGS
    frame to a gRPC client, the start of a status line (``HTTP/1.1 200``) to anything
    else. The probe's first contact hears an answer there, so its calls themselves must
    time out: what tests of the per-call timeouts (gRPC deadlines the probe sets itself
    in old tritonclients) need, now that a port that never answers at all is found
    silent before the checks."""
    import threading

    def greet(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.settimeout(10)
            first = conn.recv(4096)
            conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
                         if first.startswith(b"PRI * HTTP/2.0") else b"HTTP/1.1 200")

    def start(conn: socket.socket, _: int) -> None:
        threading.Thread(target=greet, args=(conn,), daemon=True).start()

    with tcp_listener(start) as port:
        yield port


@contextlib.contextmanager
def tcp_listener(on_accept: Callable[[socket.socket, int], None] | None = None,
                 ) -> Iterator[int]:
    """A loopback port whose connections are accepted and held open until the end:
    ``on_accept(conn, n)`` sees the n-th connection (from 0); without it nothing is
    ever sent. What the tests of hung servers and silent SSH endpoints stand on."""
    import threading

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn = sock.accept()[0]
            except OSError:
                continue
            if on_accept is not None:
                with contextlib.suppress(OSError):
                    on_accept(conn, len(held))
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        sock.close()


def server_success(triton: TritonServer, model: str) -> int:
    """The server's own count of successful requests for ``model`` (statistics API):
    what load tests compare the client's count with."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(triton.http_url)
    try:
        stats = client.get_inference_statistics(model)
    finally:
        client.close()
    return sum(int(s["inference_stats"]["success"]["count"]) for s in stats["model_stats"])

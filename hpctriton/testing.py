"""Start a real Triton Inference Server on this machine, for tests and demos.

The ``nvidia-pytriton`` wheel (``pip install nvidia-pytriton``) ships a complete
``tritonserver`` with the Python backend, and it runs on a CPU-only machine. This module
finds it, gives it a private backend directory with the Python-backend stub built for
the running interpreter, and starts it on free loopback ports::

    from hpctriton.testing import start_triton

    with start_triton() as server:            # the demo models shipped with hpctriton
        print(server.http_url, server.grpc_url, server.metrics_url)
        # ... run checks against it ...

    server = start_triton("my_models/", models=["resnet"], ready_timeout_s=120)
    try:
        ...
    finally:
        server.stop()

The demo model repository (``hpctriton/demo_models``, Python-backend models) holds
``simple`` (Triton's canonical add/sub, dynamic batching on), ``echo_bytes`` (BYTES,
dynamic dim), ``failing`` (``execute`` raises), ``slow`` (answers after ``delay_s``,
0.5 s), ``identity_all_types`` (one input and output per datatype, BF16 included) and
``sequence_echo`` (a sequence model: requests need a correlation id) and
``token_streamer`` (a decoupled model that streams tokens like an LLM: a prefill
delay, one token per response every ``token_s``, ``max_tokens`` from an input).

Why each step is needed:

* the wheel's shared libraries live in ``nvidia_pytriton.libs``, so ``LD_LIBRARY_PATH``
  must name it;
* the Python backend looks for ``triton_python_backend_stub`` next to
  ``libtriton_python.so``, and the wheel keeps one stub per Python version elsewhere,
  so a backend directory is assembled in a temporary folder;
* the stub imports numpy from the Python it finds first on ``PATH``, so the folder of
  ``sys.executable`` goes first.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence

__all__ = [
    "DEMO_MODELS",
    "TritonServer",
    "TritonServerError",
    "find_pytriton",
    "free_port",
    "start_triton",
]

#: The model repository shipped inside the hpctriton package.
DEMO_MODELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo_models")

_INSTALL_HINT = "pip install nvidia-pytriton"


class TritonServerError(RuntimeError):
    """tritonserver could not be found, started, or died; the message says why."""


class PyTriton:
    """Paths inside an installed ``nvidia-pytriton`` wheel."""

    def __init__(self, package_dir: str) -> None:
        self.package_dir = package_dir
        self.server_dir = os.path.join(package_dir, "tritonserver")
        self.binary = os.path.join(self.server_dir, "bin", "tritonserver")
        self.libs = os.path.join(os.path.dirname(package_dir), "nvidia_pytriton.libs")
        self.python_backend = os.path.join(self.server_dir, "backends", "python")

    def stub(self, version: str | None = None) -> str:
        """The Python-backend stub for ``version`` ("3.11"), default the running Python."""
        version = version or "{}.{}".format(*sys.version_info[:2])
        path = os.path.join(self.server_dir, "python_backend_stubs", version,
                            "triton_python_backend_stub")
        if not os.path.isfile(path):
            have = sorted(os.listdir(os.path.join(self.server_dir, "python_backend_stubs")))
            raise TritonServerError(
                "nvidia-pytriton has no Python-backend stub for Python {} (it has: {}); "
                "run with one of those Pythons".format(version, ", ".join(have)))
        return path


def find_pytriton() -> PyTriton:
    """Locate the ``nvidia-pytriton`` wheel without importing it (its import is heavy)."""
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonServerError(
            f"nvidia-pytriton is not installed in {sys.prefix} ({sys.executable}); it "
            f"provides tritonserver: {_INSTALL_HINT}")
    found = PyTriton(list(spec.submodule_search_locations)[0])
    if not os.path.isfile(found.binary):
        raise TritonServerError(
            f"nvidia-pytriton at {found.package_dir} has no tritonserver binary "
            f"({found.binary}); reinstall it: {_INSTALL_HINT}")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _backend_dir(pytriton: PyTriton, into: str) -> str:
    """A backend directory: the wheel's Python backend plus the stub for this Python."""
    python_dir = os.path.join(into, "python")
    os.makedirs(python_dir)
    for name in os.listdir(pytriton.python_backend):
        src = os.path.join(pytriton.python_backend, name)
        if os.path.isfile(src):
            shutil.copy2(src, python_dir)
    shutil.copy2(pytriton.stub(), os.path.join(python_dir, "triton_python_backend_stub"))
    return into


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the parent dies (Linux), so a server
    never outlives a test run that was killed (atexit handlers do not run then).

    Linux sends the signal when the *thread* that started the server ends: start
    servers from a thread that lives as long as you need them (the main thread).
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux, or no prctl: atexit still stops it
        pass


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16384))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class TritonServer:
    """A running ``tritonserver``; stop it with ``stop()`` or by leaving a ``with`` block.

    ``http_url``, ``grpc_url`` and ``metrics_url`` are ``host:port`` (no scheme), the form
    tritonclient takes; ``log_path`` is the server's combined stdout and stderr.
    """

    def __init__(self, process: subprocess.Popen, workdir: str, *, host: str, http_port: int,
                 grpc_port: int, metrics_port: int, model_repository: str, log_path: str,
                 argv: Sequence[str], keep_workdir: bool = False) -> None:
        self.process = process
        self.workdir = workdir
        self.host = host
        self.http_port = http_port
        self.grpc_port = grpc_port
        self.metrics_port = metrics_port
        self.model_repository = model_repository
        self.log_path = log_path
        self.argv = list(argv)
        self._keep_workdir = keep_workdir

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.host}:{self.metrics_port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the server's log (for error messages)."""
        return _tail(self.log_path, lines)

    def wait_ready(self, timeout_s: float = 60.0,
                   headers: Mapping[str, str] | None = None) -> None:
        """Poll ``/v2/health/ready`` until it answers 200; raise if the server dies."""
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.http_url}/v2/health/ready"
        last = "no answer yet"
        while True:
            if not self.alive():
                raise TritonServerError(
                    f"tritonserver exited with code {self.process.returncode} before it was "
                    f"ready; last lines of {self.log_path}:\n{self.log_tail()}")
            try:
                request = urllib.request.Request(url, headers=dict(headers or {}))
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
                    last = f"HTTP {response.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (OSError, ValueError) as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                tail = self.log_tail()
                self.stop()
                raise TritonServerError(
                    f"tritonserver was not ready after {timeout_s:.0f} s (last answer: {last}); "
                    f"last lines of {self.log_path}:\n{tail}")
            time.sleep(0.1)

    def terminate(self) -> None:
        """Ask the server to stop (SIGTERM) without waiting; ``stop()`` (called at exit
        at the latest) waits and cleans up. Stopping several servers this way lets them
        shut down side by side: tritonserver takes about 3 s to exit."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``; removes the private files."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if not self._keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        atexit.unregister(self.stop)

    def __enter__(self) -> TritonServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (f"TritonServer(http={self.http_url}, grpc={self.grpc_url}, "
                f"metrics={self.metrics_url}, pid={self.process.pid})")


def start_triton(
    model_repository: str | None = None,
    *,
    http_port: int | None = None,
    grpc_port: int | None = None,
    metrics_port: int | None = None,
    models: Iterable[str] | None = None,
    extra_args: Sequence[str] = (),
    ready_timeout_s: float = 60.0,
    ready_headers: Mapping[str, str] | None = None,
    host: str = "127.0.0.1",
    env: Mapping[str, str] | None = None,
    keep_workdir: bool = False,
) -> TritonServer:
    """Start ``tritonserver`` from the ``nvidia-pytriton`` wheel and wait until it is ready.

    ``model_repository`` defaults to the demo models shipped with hpctriton. ``models``
    loads only those (explicit model-control mode), which starts faster. Ports default
    to free loopback ports. ``extra_args`` go to tritonserver as they are, for example
    ``["--grpc-use-ssl=true", ...]``. ``ready_headers`` are sent while polling readiness
    (needed when ``health`` is a restricted API). Raises ``TritonServerError`` with the
    last lines of the server's log when it cannot start.

    Example::

        with start_triton(models=["simple"]) as server:
            tritonclient.http.InferenceServerClient(server.http_url).is_server_ready()
    """
    pytriton = find_pytriton()
    repo = os.path.abspath(model_repository or DEMO_MODELS)
    if not os.path.isdir(repo):
        raise TritonServerError(f"model repository {repo} is not a folder")
    workdir = tempfile.mkdtemp(prefix="hpctriton-triton-")
    try:
        backends = _backend_dir(pytriton, os.path.join(workdir, "backends"))
        ports = {"http": http_port or free_port(host), "grpc": grpc_port or free_port(host),
                 "metrics": metrics_port or free_port(host)}
        argv = [
            pytriton.binary,
            "--model-repository", repo,
            "--backend-directory", backends,
            "--http-address", host, "--http-port", str(ports["http"]),
            "--grpc-address", host, "--grpc-port", str(ports["grpc"]),
            "--metrics-address", host, "--metrics-port", str(ports["metrics"]),
            "--exit-timeout-secs", "3",
        ]
        if models is not None:
            argv += ["--model-control-mode", "explicit"]
            for name in models:
                argv += ["--load-model", name]
        argv += list(extra_args)
        child_env = dict(os.environ if env is None else env)
        child_env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (pytriton.libs, child_env.get("LD_LIBRARY_PATH", "")) if p)
        child_env["PATH"] = os.pathsep.join(
            p for p in (os.path.dirname(sys.executable), child_env.get("PATH", "")) if p)
        log_path = os.path.join(workdir, "tritonserver.log")
        with open(log_path, "wb") as log:
            process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=child_env,
                                       cwd=workdir, start_new_session=True,
                                       preexec_fn=_die_with_parent)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    server = TritonServer(process, workdir, host=host, http_port=ports["http"],
                          grpc_port=ports["grpc"], metrics_port=ports["metrics"],
                          model_repository=repo, log_path=log_path, argv=argv,
                          keep_workdir=keep_workdir)
    # A server must not outlive the Python that started it (a test run killed midway).
    atexit.register(server.stop)
    try:
        server.wait_ready(ready_timeout_s, headers=ready_headers)
    except TritonServerError:
        if server.alive():
            server.stop()
        raise
    except BaseException:
        server.stop()
        raise
    return server

"""``hpctriton demo``: the main job on one machine, for a newcomer's first run.

Starts the bundled demo Triton server (the ``nvidia-pytriton`` wheel's ``tritonserver``
with the demo model repository), submits the checks of ``examples/local.yaml`` with
the local backend, waits, collects, prints the report, and stops the server on exit.

:data:`DEMO_CONFIG` is ``examples/local.yaml`` in code (a test keeps the two equal), so
the demo also works from an installed wheel; the server's ports are filled in with
``--set`` overrides, exactly as a user does when a server's ports are known only once
it runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctriton.config import Config, config_from_data
from hpctriton.errors import HpctritonError, UsageError

#: examples/local.yaml, as data (tests/test_demo.py compares the two).
DEMO_CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "http_port": 8000, "grpc_port": 8001,
               "metrics_port": 8002},
    "models": ["simple", "token_streamer"],
    "container": {"runtime": "none"},
    "clusters": {"local": {"backend": "local"}},
}


class DemoError(HpctritonError):
    """The demo could not start its server; the message says what to do."""


@dataclass(frozen=True)
class DemoServer:
    """The running demo server: its ports, models and process."""

    http_port: int
    grpc_port: int
    metrics_port: int
    models: list[str] = field(default_factory=list)
    pid: int | None = None
    alive: Callable[[], bool] = field(default=lambda: True, compare=False, repr=False)
    log_tail: Callable[[], str] = field(default=lambda: "", compare=False, repr=False)

    def overrides(self) -> list[str]:
        return [f"server.http_port={self.http_port}", f"server.grpc_port={self.grpc_port}",
                f"server.metrics_port={self.metrics_port}"]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def demo_server(http_port: int | None = None, grpc_port: int | None = None,
                metrics_port: int | None = None,
                ready_timeout_s: float = 120.0) -> Iterator[DemoServer]:
    """Run the demo Triton server for the duration of a ``with`` block."""
    try:
        from hpctriton.testing import TritonServerError, find_pytriton, start_triton
    except ImportError as exc:  # pragma: no cover - testing imports only the stdlib
        raise DemoError(f"cannot load the demo server helper: {exc}") from None
    try:
        find_pytriton()
    except TritonServerError as exc:
        raise DemoError(f"{exc}\nThe demo needs the nvidia-pytriton wheel: run ./scripts/setup "
                        "(or pip install nvidia-pytriton).") from None
    for name, port in (("--http-port", http_port), ("--grpc-port", grpc_port),
                       ("--metrics-port", metrics_port)):
        if port is not None and not _port_free(port):
            raise UsageError(f"{name} {port} is in use on 127.0.0.1: pick another port, or "
                             "leave the option out to use a free one")
    try:
        server = start_triton(http_port=http_port, grpc_port=grpc_port,
                              metrics_port=metrics_port, ready_timeout_s=ready_timeout_s)
    except TritonServerError as exc:
        raise DemoError(f"the demo Triton server did not become ready: {exc}\n"
                        "Check the log above; on a slow machine give it more time with "
                        "--ready-timeout.") from None
    try:
        yield DemoServer(server.http_port, server.grpc_port, server.metrics_port,
                         models=demo_models(), pid=server.pid, alive=server.alive,
                         log_tail=server.log_tail)
    finally:
        server.stop()


def demo_models() -> list[str]:
    """The models of the bundled demo repository (``hpctriton/demo_models``)."""
    from hpctriton.testing import DEMO_MODELS

    return sorted(name for name in os.listdir(DEMO_MODELS)
                  if os.path.isfile(os.path.join(DEMO_MODELS, name, "config.pbtxt")))


def demo_config(server: DemoServer, runs_dir: str | Path,
                config_path: str | Path | None = None) -> Config:
    """``examples/local.yaml`` (or ``config_path``) with the demo server's ports."""
    if config_path is not None:
        from hpctriton.config import load_config

        config = load_config(config_path, overrides=server.overrides())
    else:
        from hpctriton.config import overrides as ov

        data = ov.apply_all(DEMO_CONFIG, [ov.parse_set(o) for o in server.overrides()])
        config = config_from_data(data)
    return config.model_copy(update={"runs_dir": str(Path(runs_dir).resolve())})

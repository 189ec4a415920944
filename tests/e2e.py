"""Configs for end-to-end tests: the real sshd, Slurm and Triton of the test session.

Jobs run the real probe with this venv's Python (which has tritonclient) inside the
``singularity`` stand-in, which checks its arguments and runs the command without a
container (no Singularity package exists for this machine).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hpctriton.config import Config, config_from_data

DEFAULT_CHECKS = ["health", "metadata", "keepalive", "infer", "statistics", "metrics"]


def server_block(triton: Any, **overrides: Any) -> dict[str, Any]:
    block = {"host": "127.0.0.1", "http_port": triton.http_port,
             "grpc_port": triton.grpc_port, "metrics_port": triton.metrics_port}
    block.update(overrides)
    return block


def cluster_block(sshd: Any, tmp_path: Path, backend: str, **extra: Any) -> dict[str, Any]:
    block: dict[str, Any] = {
        "backend": backend, "host": sshd.host, "port": sshd.port, "user": sshd.user,
        "key": str(sshd.client_key), "known_hosts": str(sshd.known_hosts),
        "workdir": str(tmp_path / "remote"), "connect_timeout_s": 10,
    }
    block.update(extra)
    return block


def make_config(tmp_path: Path, triton: Any, sshd: Any | None = None, *,
                backend: str = "slurm", models: list[str] | None = None,
                checks: list[Any] | None = None, sweep: dict[str, Any] | None = None,
                container: dict[str, Any] | None = None, server: dict[str, Any] | None = None,
                cluster: dict[str, Any] | None = None) -> Config:
    """A config whose one cluster is reached through ``sshd`` (or locally without it)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    image = tmp_path / "tritonclient.sif"
    image.write_bytes(b"stand-in image")
    if sshd is not None:
        block = cluster_block(sshd, tmp_path, backend, **(cluster or {}))
    else:
        block = {"backend": backend, "workdir": str(tmp_path / "remote"), **(cluster or {})}
    data: dict[str, Any] = {
        "server": server_block(triton, **(server or {})),
        "models": models or ["simple"],
        "checks": checks or DEFAULT_CHECKS,
        "probe": {"timeout_s": 5, "retries": 0},
        "container": container or {"runtime": "singularity", "image": str(image),
                                   "python": sys.executable},
        "clusters": {"test": block},
        "runs_dir": str(tmp_path / "runs"),
    }
    if sweep:
        data["sweep"] = sweep
    return config_from_data(data, base_dir=tmp_path)

"""Transports: where a backend's commands run (this machine, or a login node over SSH)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpctriton.transport.base import CommandResult, Transport
from hpctriton.transport.local import LocalTransport

if TYPE_CHECKING:
    from hpctriton.config import ClusterConfig


def open_transport(cluster: ClusterConfig) -> Transport:
    """The transport for a cluster: SSH when it names a host, local otherwise.

    Connecting is lazy: nothing happens until the first command.
    """
    if cluster.host is None:
        return LocalTransport(env=dict(cluster.remote_env))
    from hpctriton.transport.ssh import SSHTransport, resolve_target

    target = resolve_target(
        cluster.host, user=cluster.user, port=cluster.port, key=cluster.key,
        known_hosts=cluster.known_hosts, host_key_policy=cluster.host_key_policy,
        connect_timeout_s=cluster.connect_timeout_s,
    )
    return SSHTransport(target=target, env=dict(cluster.remote_env))


__all__ = ["CommandResult", "LocalTransport", "Transport", "open_transport"]

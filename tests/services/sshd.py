"""A private OpenSSH server on 127.0.0.1 for tests: its own host key, client key and config.

Nothing of the user's own ``~/.ssh`` is read or written: keys, ``authorized_keys``,
``known_hosts``, the pid file and the log all live in a temp folder.

Remote environment: every session gets ``SetEnv PATH=<path_prepend>:<system PATH>`` and
the extra ``env``. bash started by sshd for a command (paramiko's ``exec_command``,
``ssh host CMD``) is non-interactive but still sources ``~/.bashrc`` when it believes
it is the top-level shell of an ssh session (bash's ``SSH_SOURCE_BASHRC`` + ``SHLVL<2``
check). On this machine that ``.bashrc`` puts pyenv's shims and cargo first, so SetEnv's
PATH lost. With ``skip_bashrc=True`` (default) SetEnv also sets ``SHLVL=1``: bash then
counts itself as level 2, not top-level, and leaves ``~/.bashrc`` alone; nothing else
changes (``HOME``, ``BASH_ENV``, login shells untouched). Remote commands thus see
SetEnv's PATH exactly. ``skip_bashrc=False`` gives the realistic site whose ``.bashrc``
reorders PATH.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import (
    KEEP_FILE,
    MARK_VAR,
    START_DEADLINE_S,
    Cleanup,
    ServiceError,
    Unavailable,
    free_port,
    make_workdir,
    reap_orphans,
    remove_tree,
    require_binaries,
    run,
    service_env,
    start_daemon,
    sweep,
    wait_for_port,
)

HOST = "127.0.0.1"
# sshd's own default PATH for root on Debian, without the caller's pyenv/cargo entries.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PRIVSEP_DIR = Path("/run/sshd")


@dataclass
class Sshd:
    """A running test sshd and everything a client needs to log in with host-key checking."""

    host: str
    port: int
    user: str
    client_key: Path  # ed25519 private key, no passphrase
    known_hosts: Path  # one line: "[127.0.0.1]:PORT ssh-ed25519 AAAA..."
    host_public_key: str  # "ssh-ed25519 AAAA..."
    env: dict[str, str]  # what sshd's SetEnv gives every session (PATH included)
    workdir: Path
    log: Path
    config: Path
    _cleanup: Cleanup = field(repr=False)

    @property
    def known_hosts_name(self) -> str:
        """The name known_hosts uses for this server: ``[host]:port``."""
        return f"[{self.host}]:{self.port}"

    def ssh_argv(self, *command: str) -> list[str]:
        """An OpenSSH ``ssh`` command line that logs in here, host key checked strictly."""
        return [
            "ssh",
            "-F",
            "/dev/null",
            "-i",
            str(self.client_key),
            "-p",
            str(self.port),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            f"{self.user}@{self.host}",
            *command,
        ]

    def paramiko_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``paramiko.SSHClient.connect`` (load ``known_hosts`` first)."""
        return {
            "hostname": self.host,
            "port": self.port,
            "username": self.user,
            "key_filename": str(self.client_key),
            "look_for_keys": False,
            "allow_agent": False,
            "timeout": 10,
        }

    def stop(self) -> None:
        """Stop sshd and every session process it started; remove the temp folder."""
        self._cleanup.close()
        if self._cleanup.errors:
            raise ServiceError("sshd teardown: " + "; ".join(self._cleanup.errors))


def start_sshd(
    path_prepend: Sequence[str | Path] = (),
    env: Mapping[str, str] | None = None,
    skip_bashrc: bool = True,
    keep_workdir: bool = False,
    timeout: float = START_DEADLINE_S,
) -> Sshd:
    """Start sshd as the current user's server; sessions get ``path_prepend`` first on PATH.

    ``env`` adds variables to every session (e.g. ``SLURM_CONF``). Raises Unavailable when
    sshd is not installed or cannot run here, ServiceError (with the log) when it fails.
    """
    binaries = require_binaries("sshd", "sshd", "ssh-keygen")
    reap_orphans()
    _ensure_privsep_dir()
    user = pwd.getpwuid(os.geteuid()).pw_name
    workdir = make_workdir("sshd")
    if keep_workdir:
        (workdir / KEEP_FILE).touch()
    cleanup = Cleanup()
    cleanup.add("remove sshd workdir", lambda: remove_tree(workdir))
    with cleanup.on_error():
        host_key, client_key = _make_keys(workdir, binaries["ssh-keygen"])
        session_env = _session_env(workdir, path_prepend, env or {}, skip_bashrc)
        port, config = _write_config(workdir, user, host_key, session_env)
        run([binaries["sshd"], "-t", "-f", str(config)])
        daemon = start_daemon(
            "sshd", [binaries["sshd"], "-D", "-e", "-f", str(config)], workdir, service_env(workdir)
        )
        cleanup.add("sweep sshd sessions", lambda: sweep(workdir))
        cleanup.add("stop sshd", daemon.stop)
        wait_for_port(daemon, port, timeout, HOST)
        host_public = " ".join(host_key.with_suffix(".pub").read_text().split()[:2])
        known_hosts = workdir / "known_hosts"
        known_hosts.write_text(f"[{HOST}]:{port} {host_public}\n")
    return Sshd(
        host=HOST,
        port=port,
        user=user,
        client_key=client_key,
        known_hosts=known_hosts,
        host_public_key=host_public,
        env=session_env,
        workdir=workdir,
        log=daemon.log,
        config=config,
        _cleanup=cleanup,
    )


def _ensure_privsep_dir() -> None:
    """sshd refuses to start without /run/sshd (Debian's init script normally makes it)."""
    if PRIVSEP_DIR.is_dir():
        return
    try:
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
    except OSError as exc:
        raise Unavailable(f"sshd needs {PRIVSEP_DIR} and cannot create it: {exc}") from exc


def _make_keys(workdir: Path, ssh_keygen: str) -> tuple[Path, Path]:
    """A host key for the server and an ed25519 client key authorised for our user."""
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "id_ed25519"
    for path, comment in ((host_key, "hpctriton-test-host"), (client_key, "hpctriton-test")):
        run([ssh_keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    (workdir / "authorized_keys").write_text(client_key.with_suffix(".pub").read_text())
    return host_key, client_key


def _session_env(
    workdir: Path, path_prepend: Sequence[str | Path], env: Mapping[str, str], skip_bashrc: bool
) -> dict[str, str]:
    """The variables SetEnv gives every session; PATH = path_prepend, then the system's."""
    if "PATH" in env:
        raise ValueError("give PATH entries as path_prepend, not in env")
    session = {"PATH": os.pathsep.join([*map(str, path_prepend), SYSTEM_PATH])}
    if skip_bashrc:
        session["SHLVL"] = "1"
    session[MARK_VAR] = str(workdir)  # session processes are swept at stop
    session.update(env)
    return session


def _setenv_line(env: Mapping[str, str]) -> str:
    """sshd_config's SetEnv line; values are double-quoted, which sshd cannot escape."""
    for name, value in env.items():
        if not name.isidentifier() or any(c in value for c in '"\n\\'):
            raise ValueError(f"cannot pass {name}={value!r} through sshd's SetEnv")
    return "SetEnv " + " ".join(f'"{name}={value}"' for name, value in env.items())


def _write_config(
    workdir: Path, user: str, host_key: Path, session_env: Mapping[str, str]
) -> tuple[int, Path]:
    """sshd_config: loopback, pubkey only, internal sftp, everything under ``workdir``."""
    port = free_port(HOST)
    config = workdir / "sshd_config"
    lines = [
        f"Port {port}",
        f"ListenAddress {HOST}",
        "AddressFamily inet",
        f"HostKey {host_key}",
        f"PidFile {workdir / 'sshd.pid'}",
        f"AuthorizedKeysFile {workdir / 'authorized_keys'}",
        f"AllowUsers {user}",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "HostbasedAuthentication no",
        "PermitRootLogin prohibit-password",
        "PermitUserEnvironment no",
        "UsePAM no",
        "UseDNS no",
        "StrictModes no",  # temp folders are not owned/moded like ~/.ssh
        "PrintMotd no",
        "PrintLastLog no",
        "X11Forwarding no",
        "MaxStartups 64:30:128",  # tests may open many connections at once
        "MaxSessions 64",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
        _setenv_line(session_env),
    ]
    config.write_text("\n".join(lines) + "\n")
    return port, config

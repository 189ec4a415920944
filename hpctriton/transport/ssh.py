"""The SSH transport (paramiko): one verified connection reused for a whole operation.

* ``~/.ssh/config`` is honoured (HostName, User, Port, IdentityFile, ProxyJump,
  ProxyCommand, UserKnownHostsFile); the cluster's own fields win over it, as command
  line options win over the file for OpenSSH.
* Host keys are verified against known_hosts, looked up as ``[host]:port`` exactly
  (``host`` alone for port 22), like OpenSSH: the user's file, then the global
  ``/etc/ssh/ssh_known_hosts``; lines that cannot be used are skipped
  (:mod:`.known_hosts`). ``accept-new`` records an unknown key; a changed or
  ``@revoked`` key is always refused.
* Scripts run as ``bash -s`` with the script on stdin; stdout and stderr are read
  concurrently; every command has a timeout; the transport sends keepalives.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, cast

import paramiko

from hpctriton.errors import CommandError, HostKeyError, TransportError
from hpctriton.transport.base import (
    STAGED_DIR_MODE,
    STAGED_FILE_MODE,
    ByteStream,
    Finish,
    Transport,
    drain,
)
from hpctriton.transport.known_hosts import GLOBAL_KNOWN_HOSTS, KnownHost, lookup

log = logging.getLogger("hpctriton.transport.ssh")

DEFAULT_KNOWN_HOSTS = "~/.ssh/known_hosts"
#: A result stream that sends nothing for this long is given up (it may be long overall).
TAR_IDLE_TIMEOUT_S = 300.0


def host_key_name(host: str, port: int) -> str:
    """The known_hosts name OpenSSH and paramiko use: ``[host]:port`` unless port 22."""
    return host if port == 22 else f"[{host}]:{port}"


@dataclass(frozen=True)
class SSHTarget:
    """Where to connect, after ``~/.ssh/config`` and the cluster's fields are merged."""

    alias: str
    hostname: str
    port: int = 22
    user: str | None = None
    key_files: tuple[str, ...] = ()
    known_hosts: str = DEFAULT_KNOWN_HOSTS
    #: Read after ``known_hosts`` (never written): the user's other files and the global
    #: ones (``/etc/ssh/ssh_known_hosts``, as OpenSSH reads them).
    other_known_hosts: tuple[str, ...] = GLOBAL_KNOWN_HOSTS
    host_key_policy: str = "verify"
    proxy_jump: str | None = None
    proxy_command: str | None = None
    connect_timeout_s: float = 15.0
    #: The ssh config file this was resolved from (jump hosts are resolved through it).
    ssh_config: str = "~/.ssh/config"

    @property
    def label(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.hostname}:{self.port}"


def resolve_target(
    host: str,
    *,
    user: str | None = None,
    port: int | None = None,
    key: str | None = None,
    known_hosts: str | None = None,
    host_key_policy: str = "verify",
    connect_timeout_s: float = 15.0,
    ssh_config: str = "~/.ssh/config",
) -> SSHTarget:
    """Merge ``~/.ssh/config`` for ``host`` with explicit values (which win)."""
    conf: dict[str, Any] = {}
    path = Path(ssh_config).expanduser()
    if path.is_file():
        try:
            conf = dict(paramiko.SSHConfig.from_path(str(path)).lookup(host))
        except Exception as exc:  # noqa: BLE001 - a broken ssh config must not be fatal
            log.warning("ignoring %s: %s", path, exc)
    # an IdentityFile of ~/.ssh/config that does not exist is skipped, as OpenSSH does;
    # the cluster's own `key` must exist (a typo there gets a clear error)
    identity = [key] if key else [k for k in conf.get("identityfile", [])
                                  if Path(os.path.expanduser(k)).is_file()]
    user_files = ([known_hosts] if known_hosts else
                  conf.get("userknownhostsfile", "").split() or [DEFAULT_KNOWN_HOSTS])
    global_files = conf.get("globalknownhostsfile", "").split() or list(GLOBAL_KNOWN_HOSTS)
    known = user_files[0]
    return SSHTarget(
        alias=host,
        hostname=conf.get("hostname", host),
        port=int(port or conf.get("port", 22)),
        user=user or conf.get("user") or None,
        key_files=tuple(os.path.expanduser(k) for k in identity),
        known_hosts=os.path.expanduser(known),
        other_known_hosts=tuple(os.path.expanduser(f) for f in [*user_files[1:],
                                                                  *global_files]),
        host_key_policy=host_key_policy,
        proxy_jump=conf.get("proxyjump"),
        proxy_command=conf.get("proxycommand"),
        connect_timeout_s=connect_timeout_s,
        ssh_config=ssh_config,
    )


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """OpenSSH's ``StrictHostKeyChecking=accept-new``: record unknown keys, never changed ones."""

    def __init__(self, known_hosts: str) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        path = Path(self.known_hosts)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)
        log.warning("accepted new host key for %s (%s %s) into %s", hostname, key.get_name(),
                    key.fingerprint, path)


def _connect_error(target: SSHTarget, exc: BaseException,
                   known: KnownHost | None = None) -> TransportError:
    where = target.label
    name = host_key_name(target.hostname, target.port)
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, paramiko.SSHException) and (
            "protocol banner" in str(exc) or "No existing session" in str(exc)):
        return TransportError(
            f"{where} accepted the connection but sent no SSH greeting within "
            f"{target.connect_timeout_s:g} s (connect_timeout_s): is it an SSH server, and "
            "the right port? (a firewall or an overloaded server can do this too)")
    if isinstance(exc, paramiko.BadHostKeyException):
        return HostKeyError(
            f"HOST KEY MISMATCH for {name}: the server offered {exc.key.get_name()} "
            f"{exc.key.fingerprint}, but {target.known_hosts} records a different key. This "
            "can mean someone is intercepting the connection, or the server was reinstalled. "
            "Check the fingerprint with the cluster's admins; if it is right, remove the old "
            f"entry with: ssh-keygen -R '{name}' -f {target.known_hosts}")
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        ca = ""
        if known is not None and known.cert_authorities:
            ca = (f" known_hosts trusts a certificate authority for it "
                  f"({', '.join(known.cert_authorities[:2])}), but paramiko cannot verify "
                  "host certificates: add the host's own key.")
        return HostKeyError(
            f"the host key of {name} is not in {target.known_hosts} (nor in "
            f"{', '.join(target.other_known_hosts) or 'any other known_hosts'}).{ca} Verify "
            f"it with the cluster's admins, then add it (ssh-keyscan -p {target.port} "
            f"{target.hostname} >> {target.known_hosts}), or set host_key_policy: accept-new "
            "for this cluster")
    if isinstance(exc, paramiko.PasswordRequiredException):
        return TransportError(
            f"the key for {where} is encrypted: load it into ssh-agent (ssh-add) first")
    if isinstance(exc, paramiko.AuthenticationException) or (
            isinstance(exc, paramiko.SSHException)
            and "No authentication methods available" in str(exc)):
        keys = ", ".join(target.key_files) or "the agent's and default keys"
        encrypted = [k for k in target.key_files if _is_encrypted(k)]
        if encrypted:
            return TransportError(
                f"authentication failed for {where}: {encrypted[0]} is encrypted and no "
                "ssh-agent offered it: load it with ssh-add (hpctriton never asks for "
                "passphrases)")
        return TransportError(
            f"authentication failed for {where} (tried {keys}): check the user name, the key "
            "(clusters.<name>.key) and that its public half is in the remote authorized_keys")
    if isinstance(exc, FileNotFoundError):
        return TransportError(f"SSH key file not found for {where}: {exc.filename}")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return TransportError(f"connection refused by {where}: is sshd running, is the port "
                              "right?", transient=True)
    if isinstance(exc, socket.gaierror):
        return TransportError(f"unknown host {target.hostname!r}: {exc.strerror}")
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return TransportError(f"connecting to {where} timed out after "
                              f"{target.connect_timeout_s:g} s", transient=True)
    if isinstance(exc, (paramiko.SSHException, OSError)):
        return TransportError(f"SSH connection to {where} failed: {exc}", transient=True)
    return TransportError(f"SSH connection to {where} failed: {exc!r}")


def _load_key(path: str) -> paramiko.PKey | None:
    """Read a private key of any type paramiko knows (from_path detects it); None for
    an encrypted key, which ssh-agent may hold (authentication then says what to do)."""
    if not Path(path).is_file():
        raise FileNotFoundError(2, "no such file", path)
    try:
        return paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError):
        return None  # passphrase-protected: leave it to the agent
    except (paramiko.SSHException, ValueError, OSError) as exc:
        raise TransportError(f"cannot read the SSH key {path}: {exc}") from None


def _is_encrypted(path: str) -> bool:
    try:
        paramiko.PKey.from_path(path)
    except (paramiko.PasswordRequiredException, TypeError):
        return True
    except Exception:  # noqa: BLE001 - unreadable is not "encrypted"
        return False
    return False


def _read_all(stream: ByteStream, sink: list[bytes]) -> threading.Thread:
    def pump() -> None:
        with contextlib.suppress(TimeoutError, OSError, EOFError):
            sink.append(stream.read())

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


@dataclass
class SSHTransport(Transport):
    """Runs scripts on a remote host over one paramiko connection."""

    target: SSHTarget | None = None
    keepalive_s: int = 30
    _client: paramiko.SSHClient | None = field(default=None, repr=False)
    _jumps: list[SSHTransport] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        if self.target is None:
            raise ValueError("SSHTransport needs a target")
        self.label = self.target.label

    # ---------------------------------------------------------- connecting

    def _sock(self, target: SSHTarget) -> Any:
        if target.proxy_jump and target.proxy_jump.lower() != "none":
            # "a,b": reach b through a, then the target through b (the last hop is
            # resolved with the earlier hops as its own ProxyJump, recursively)
            *earlier, hop = target.proxy_jump.split(",")
            user, _, rest = hop.rpartition("@")
            host, _, port = rest.partition(":")
            hop_target = resolve_target(
                host, user=user or None, port=int(port) if port else None,
                host_key_policy=target.host_key_policy, ssh_config=target.ssh_config,
                connect_timeout_s=target.connect_timeout_s)
            if earlier:
                hop_target = replace(hop_target, proxy_jump=",".join(earlier))
            jump = SSHTransport(target=hop_target)
            self._jumps.append(jump)
            hop_transport = jump.client().get_transport()
            assert hop_transport is not None  # a connected client has one
            channel = hop_transport.open_channel(
                "direct-tcpip", (target.hostname, target.port), ("127.0.0.1", 0),
                timeout=target.connect_timeout_s)
            return channel
        if target.proxy_command and target.proxy_command.lower() != "none":
            return paramiko.ProxyCommand(target.proxy_command)
        return None

    def client(self) -> paramiko.SSHClient:
        """The connected client; connects (and verifies the host key) on first use."""
        if self._client is not None:
            return self._client
        target = self.target
        assert target is not None
        client = paramiko.SSHClient()
        name = host_key_name(target.hostname, target.port)
        # read as OpenSSH reads them: the user's file, then the global ones; lines that
        # cannot be used are skipped (paramiko's own reader stops at the first)
        known = lookup([target.known_hosts, *target.other_known_hosts], name)
        for key in known.keys:
            client.get_host_keys().add(name, key.get_name(), key)
        if target.host_key_policy == "accept-new":
            client.set_missing_host_key_policy(_AcceptNew(target.known_hosts))
        else:
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            pkey = _load_key(target.key_files[0]) if target.key_files else None
            if pkey is None and target.key_files:
                log.info("%s is encrypted: trying ssh-agent", target.key_files[0])
            client.connect(
                target.hostname, port=target.port, username=target.user, pkey=pkey,
                # paramiko takes a list of further key files (its stubs say one)
                key_filename=cast(Any, list(target.key_files[1:]) or None),
                look_for_keys=not target.key_files, allow_agent=True,
                timeout=target.connect_timeout_s, banner_timeout=target.connect_timeout_s,
                auth_timeout=target.connect_timeout_s, sock=self._sock(target),
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes one clear error
            client.close()
            raise _connect_error(target, exc, known) from None
        transport = client.get_transport()
        assert transport is not None
        offered = transport.get_remote_server_key()
        if any(offered == revoked for revoked in known.revoked):
            client.close()
            raise HostKeyError(
                f"the host key of {name} ({offered.get_name()} {offered.fingerprint}) is "
                "marked @revoked in known_hosts: refusing to use it; ask the cluster's admins")
        transport.set_keepalive(self.keepalive_s)
        self._client = client
        log.debug("connected to %s", target.label)
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        for jump in self._jumps:
            jump.close()
        self._jumps.clear()

    # ------------------------------------------------------------ commands

    def _channel(self, script: str, timeout: float | None) -> paramiko.Channel:
        transport = self.client().get_transport()
        if transport is None or not transport.is_active():
            self._client = None
            transport = self.client().get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=self.target.connect_timeout_s
                                             if self.target else None)
            channel.settimeout(timeout)
            channel.exec_command("bash -s")
            channel.sendall(script.encode())
            channel.shutdown_write()
        except (paramiko.SSHException, OSError) as exc:
            raise TransportError(f"cannot run a command on {self.label}: {exc}",
                                 transient=True) from None
        return channel

    def _run(self, script: str, timeout: float | None) -> tuple[int, str, str]:
        channel = self._channel(script, timeout)
        out: list[bytes] = []
        err: list[bytes] = []
        stderr_reader = _read_all(channel.makefile_stderr("rb"), err)
        try:
            out.append(channel.makefile("rb").read())
            stderr_reader.join(timeout)
            code = channel.recv_exit_status()
        except TimeoutError:
            channel.close()
            raise CommandError(script, -1, b"".join(out).decode("utf-8", "replace"),
                               f"no answer from {self.label} within {timeout} s",
                               transient=True) from None
        finally:
            channel.close()
        return (code, b"".join(out).decode("utf-8", "replace"),
                b"".join(err).decode("utf-8", "replace"))

    def _stream(self, script: str, timeout: float | None) -> Iterator[str]:
        channel = self._channel(script, timeout)
        err: list[bytes] = []
        stderr_reader = _read_all(channel.makefile_stderr("rb"), err)
        try:
            for raw in channel.makefile("rb"):
                yield raw.decode("utf-8", "replace").rstrip("\n")
            code = channel.recv_exit_status()
        except TimeoutError:
            raise CommandError(script, -1, "", f"no answer from {self.label} within {timeout} s",
                               transient=True) from None
        finally:
            channel.close()
            stderr_reader.join(5)
        if code != 0:  # -1: the channel closed without an exit status (a dropped link)
            raise CommandError(script, code, "", b"".join(err).decode("utf-8", "replace"),
                               transient=code < 0)

    def _open_tar_stream(self, script: str) -> tuple[ByteStream, Finish]:
        channel = self._channel(script, TAR_IDLE_TIMEOUT_S)
        err: list[bytes] = []
        stderr_reader = _read_all(channel.makefile_stderr("rb"), err)
        stdout = channel.makefile("rb")

        def finish(abort: bool) -> tuple[int, str]:
            code = -1
            try:
                if not abort:
                    drain(stdout)  # tar's padding after the end of the archive
                    code = channel.recv_exit_status()
            except (OSError, TimeoutError, paramiko.SSHException):
                code = -1
            finally:
                channel.close()  # an abort stops the remote tar: nothing more is sent
                stderr_reader.join(10 if not abort else 1)
            return code, b"".join(err).decode("utf-8", "replace")

        return stdout, finish

    # --------------------------------------------------------------- files

    def put_files(self, files: Sequence[tuple[Path, str]], remote_dir: str) -> None:
        sftp = self.client().open_sftp()
        current = ""
        try:
            made: set[str] = set()
            for local, name in files:
                target = PurePosixPath(remote_dir) / name
                current = str(target)
                self._makedirs(sftp, str(target.parent), made)
                # private while it is written: the folder is 0700, the file 0600 at once
                with sftp.open(current, "wb") as fh:
                    fh.chmod(STAGED_FILE_MODE)
                    fh.set_pipelined(True)
                    with local.open("rb") as src:
                        while chunk := src.read(1 << 15):
                            fh.write(chunk)
                size = sftp.stat(current).st_size
                if size != local.stat().st_size:
                    raise OSError(f"it arrived with {size} of {local.stat().st_size} bytes")
        except (OSError, paramiko.SSHException) as exc:
            raise TransportError(_put_error(self.label, remote_dir, current, exc),
                                 transient=False) from None
        finally:
            sftp.close()

    @staticmethod
    def _makedirs(sftp: paramiko.SFTPClient, path: str, made: set[str]) -> None:
        parts = PurePosixPath(path).parts
        for i in range(1, len(parts) + 1):
            sub = str(PurePosixPath(*parts[:i]))
            if sub in made or sub == "/":
                continue
            try:
                sftp.stat(sub)
            except FileNotFoundError:
                sftp.mkdir(sub, STAGED_DIR_MODE)
            made.add(sub)


def _put_error(label: str, remote_dir: str, current: str, exc: BaseException) -> str:
    """A plain message for a failed copy; "Failure" and a short file are what a full disk
    or an exceeded quota look like through SFTP (it has no code of its own for them)."""
    text = str(exc) or type(exc).__name__
    where = f" ({current})" if current else ""
    if "arrived with" in text or text.strip() == "Failure" or "No space left" in text \
            or "Disk quota" in text:
        return (f"copying the bundle to {label}:{remote_dir} failed{where}: {text}. Is "
                "the disk full there, or your quota used up? Free some space (or set "
                "another workdir) and submit again")
    return f"copying files to {label}:{remote_dir} failed{where}: {text}"

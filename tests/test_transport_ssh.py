"""The SSH transport against a real OpenSSH server on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpctriton.errors import CommandError, HostKeyError, RemoteError, TransportError
from hpctriton.transport.ssh import SSHTransport, resolve_target

pytestmark = pytest.mark.service


def make_transport(sshd, **overrides) -> SSHTransport:  # type: ignore[no-untyped-def]
    values = dict(user=sshd.user, port=sshd.port, key=str(sshd.client_key),
                  known_hosts=str(sshd.known_hosts), connect_timeout_s=5)
    values.update(overrides)
    return SSHTransport(target=resolve_target(sshd.host, **values))


def test_runs_scripts_and_reports_exit_code_and_streams(sshd) -> None:  # type: ignore[no-untyped-def]
    with make_transport(sshd) as t:
        result = t.run_script("echo out; echo err >&2; exit 3")
        assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
        assert t.run(["printf", "%s|", "a b", "$(x)", "it's"]).stdout == "a b|$(x)|it's|"
        assert len(t.history) == 2  # every command is logged


def test_one_connection_is_reused(sshd) -> None:  # type: ignore[no-untyped-def]
    with make_transport(sshd) as t:
        t.run_script("true")
        first = t.client().get_transport()
        t.run_script("true")
        assert t.client().get_transport() is first


def test_remote_env_is_exported_and_quoted(sshd) -> None:  # type: ignore[no-untyped-def]
    with make_transport(sshd) as t:
        t.env = {"HPCT_X": "a b $(touch CANARY)"}
        assert t.run_script('printf %s "$HPCT_X"').stdout == "a b $(touch CANARY)"


def test_big_stderr_does_not_stall(sshd) -> None:  # type: ignore[no-untyped-def]
    with make_transport(sshd) as t:
        result = t.run_script("head -c 8000000 /dev/zero | tr '\\0' x >&2; echo done",
                              timeout=60)
        assert result.stdout == "done\n" and len(result.stderr) == 8_000_000


def test_command_timeout_is_a_transient_error(sshd) -> None:  # type: ignore[no-untyped-def]
    with make_transport(sshd) as t, pytest.raises(CommandError) as err:
        t.run_script("sleep 20", timeout=1)
    assert err.value.transient


def test_files_up_and_one_tar_stream_back(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("hello")
    remote = str(tmp_path / "remote")
    with make_transport(sshd) as t:
        t.put_files([(tmp_path / "a" / "x.txt", "sub/x.txt")], remote)
        names: list[str] = []
        t.fetch_tar_script(f"cd {remote} && tar -czf - sub",
                           lambda archive: names.extend(m.name for m in archive))
        assert "sub/x.txt" in names
        with pytest.raises(CommandError, match="tar exit code"):
            t.fetch_tar_script(f"cd {remote} && tar -czf - sub missing", lambda a: list(a))


def test_wrong_host_key_is_refused_before_any_command(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import paramiko

    other = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))  # not the host key
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {other.get_name()} {other.get_base64()}\n")
    canary = tmp_path / "CANARY"
    for policy in ("verify", "accept-new"):
        with make_transport(sshd, known_hosts=str(known), host_key_policy=policy) as t, \
                pytest.raises(HostKeyError) as err:
            t.run_script(f"touch {canary}")
        assert "HOST KEY MISMATCH" in str(err.value)
        assert "ssh-keygen -R" in str(err.value)
        assert not canary.exists()


def test_unknown_host_key_is_refused_unless_accept_new(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    known = tmp_path / "known_hosts"
    with make_transport(sshd, known_hosts=str(known)) as t, pytest.raises(HostKeyError) as err:
        t.run_script("true")
    assert f"[{sshd.host}]:{sshd.port}" in str(err.value)
    assert "ssh-keyscan" in str(err.value) and "accept-new" in str(err.value)
    with make_transport(sshd, known_hosts=str(known), host_key_policy="accept-new") as t:
        assert t.run_script("echo ok").stdout == "ok\n"
    assert known.read_text().startswith(f"[{sshd.host}]:{sshd.port} ssh-ed25519 ")
    with make_transport(sshd, known_hosts=str(known)) as t:  # now verified as known
        assert t.run_script("echo again").stdout == "again\n"


def test_host_keys_are_looked_up_as_written(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # the known_hosts entry is for [127.0.0.1]:port; "localhost" is another entry
    with make_transport(sshd) as t:
        assert t.run_script("true").ok
    t = SSHTransport(target=resolve_target(
        "localhost", user=sshd.user, port=sshd.port, key=str(sshd.client_key),
        known_hosts=str(sshd.known_hosts)))
    with t, pytest.raises(HostKeyError, match=r"\[localhost\]"):
        t.run_script("true")


def test_bad_key_gives_a_clear_message(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import paramiko

    stranger = tmp_path / "stranger"
    key = paramiko.RSAKey.generate(2048)
    key.write_private_key_file(str(stranger))
    with make_transport(sshd, key=str(stranger)) as t, pytest.raises(TransportError) as err:
        t.run_script("true")
    assert "authentication failed" in str(err.value)
    with make_transport(sshd, key=str(tmp_path / "nope")) as t, \
            pytest.raises(TransportError, match="key file not found"):
        t.run_script("true")


def test_refused_connection_is_transient(sshd) -> None:  # type: ignore[no-untyped-def]
    from services.common import free_port

    with make_transport(sshd, port=free_port()) as t, pytest.raises(TransportError) as err:
        t.run_script("true")
    assert "connection refused" in str(err.value) and err.value.transient


def test_ssh_config_alias_and_proxy_jump(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host login-alias\n  HostName {sshd.host}\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {sshd.known_hosts}\n"
        f"Host via-jump\n  HostName {sshd.host}\n  Port {sshd.port}\n  User {sshd.user}\n"
        f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {sshd.known_hosts}\n"
        f"  ProxyJump login-alias\n"
    )
    target = resolve_target("login-alias", ssh_config=str(config))
    assert (target.hostname, target.port, target.user) == (sshd.host, sshd.port, sshd.user)
    with SSHTransport(target=target) as t:
        assert t.run_script("echo direct").stdout == "direct\n"
    jump_target = resolve_target("via-jump", ssh_config=str(config))
    assert jump_target.proxy_jump == "login-alias"
    with SSHTransport(target=jump_target) as t:
        assert t.run_script("echo jumped").stdout == "jumped\n"
        assert t._jumps, "the connection went through the jump host"


def test_damaged_stream_is_reported(sshd) -> None:  # type: ignore[no-untyped-def]
    with make_transport(sshd) as t, pytest.raises(RemoteError, match="damaged"):
        t.fetch_tar_script("head -c 1000 /dev/urandom", lambda a: list(a))


def test_an_encrypted_key_without_an_agent_says_to_use_ssh_add(sshd, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                              monkeypatch) -> None:
    import paramiko

    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    key = paramiko.RSAKey.generate(2048)
    encrypted = tmp_path / "id_encrypted"
    key.write_private_key_file(str(encrypted), password="secret")
    with make_transport(sshd, key=str(encrypted)) as t, pytest.raises(TransportError) as err:
        t.run_script("true")
    assert "ssh-add" in str(err.value) and "encrypted" in str(err.value)


def test_two_proxy_jump_hops_are_chained(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    common = (f"  HostName {sshd.host}\n  Port {sshd.port}\n  User {sshd.user}\n"
              f"  IdentityFile {sshd.client_key}\n  UserKnownHostsFile {sshd.known_hosts}\n")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host hop1\n{common}Host hop2\n{common}"
                      f"Host target\n{common}  ProxyJump hop1,hop2\n")
    with SSHTransport(target=resolve_target("target", ssh_config=str(config))) as t:
        assert t.run_script("echo through-two").stdout == "through-two\n"
        assert t._jumps and t._jumps[0]._jumps, "hop2 was reached through hop1"

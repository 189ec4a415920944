"""SSH as a shared cluster has it: known_hosts files OpenSSH accepts (global ones,
``@cert-authority``, malformed lines, ``@revoked``), endpoints that never answer, staged
files nobody else can read, a full disk, links planted in a results folder."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from service_policy import unavailable

from hpctriton.errors import HostKeyError, TransportError
from hpctriton.transport.known_hosts import GLOBAL_KNOWN_HOSTS, host_matches, lookup
from hpctriton.transport.ssh import SSHTransport, resolve_target


def test_host_patterns_hashes_and_negation_match_as_openssh_does() -> None:
    name = "[login.example.org]:2222"
    salt = b"0123456789abcdefghij"
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    hashed = f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"
    assert host_matches(name, hashed)
    assert not host_matches("[other]:2222", hashed)
    assert host_matches(name, "[*.EXAMPLE.org]:2222")
    assert host_matches("node7", "node?") and not host_matches("node7", "node*,!node7")
    assert not host_matches("login", "[login]:2222")  # another port is another entry
    assert "/etc/ssh/ssh_known_hosts" in GLOBAL_KNOWN_HOSTS


def test_unusable_known_hosts_lines_are_skipped_and_cert_authorities_noted(
        tmp_path: Path) -> None:
    import paramiko

    key = paramiko.RSAKey.from_private_key_file(str(_client_key(tmp_path)))
    real = f"{key.get_name()} {key.get_base64()}"
    known = tmp_path / "known_hosts"
    known.write_text("\n".join([
        "# comment", "", "garbage",
        f"@cert-authority *.example.org {real}",
        "[h]:22 ssh-rsa !!!not-base64!!!",
        "[h]:22 ssh-madeup AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        f"@unknown-marker h {real}",
        f"  h,other\t{real} a comment",
    ]) + "\n")
    found = lookup([str(known), str(tmp_path / "missing")], "h")
    assert [k.get_base64() for k in found.keys] == [key.get_base64()]
    found = lookup([str(known)], "login.example.org")
    assert found.cert_authorities == [f"{known}:4"] and not found.keys


def _client_key(tmp_path: Path) -> Path:
    import paramiko

    path = tmp_path / "id_rsa"
    if not path.exists():
        paramiko.RSAKey.generate(2048).write_private_key_file(str(path))
    return path


def test_an_endpoint_that_never_answers_fails_within_the_connect_timeout(
        silent_port: int, tmp_path: Path) -> None:
    target = resolve_target("127.0.0.1", port=silent_port, connect_timeout_s=1.5,
                            known_hosts=str(tmp_path / "kh"), key=str(_client_key(tmp_path)))
    started = time.monotonic()
    with SSHTransport(target=target) as t, pytest.raises(TransportError) as err:
        t.run_script("true")
    assert time.monotonic() - started < 6
    assert "sent no SSH greeting within 1.5 s" in str(err.value)
    assert not err.value.transient  # a wait must not retry it for minutes


def test_doctor_against_a_port_without_a_banner_prints_one_line(silent_port: int,
                                                                tmp_path: Path) -> None:
    config = tmp_path / "hpctriton.yaml"
    config.write_text(yaml.safe_dump({
        "server": {"host": "h", "http_port": 1}, "models": ["m"],
        "container": {"runtime": "none"},
        "clusters": {"c": {"backend": "slurm", "host": "127.0.0.1", "port": silent_port,
                           "connect_timeout_s": 1, "known_hosts": str(tmp_path / "kh"),
                           "key": str(_client_key(tmp_path))}}}))
    done = subprocess.run([sys.executable, "-m", "hpctriton", "doctor", "-c", str(config),
                           "--cluster", "c"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert done.stderr.strip() == "", done.stderr
    (line,) = done.stdout.strip().splitlines()
    assert line.startswith("[FAIL] connect to") and "no SSH greeting" in line


# ----------------------------------------------------------- real OpenSSH


def make_transport(sshd, **overrides) -> SSHTransport:  # type: ignore[no-untyped-def]
    values = dict(user=sshd.user, port=sshd.port, key=str(sshd.client_key),
                  known_hosts=str(sshd.known_hosts), connect_timeout_s=5)
    values.update(overrides)
    return SSHTransport(target=resolve_target(sshd.host, **values))


@pytest.mark.service
def test_known_hosts_with_cert_authority_and_broken_lines_still_verifies(sshd,  # type: ignore[no-untyped-def]
                                                                         tmp_path: Path) -> None:
    real = sshd.known_hosts.read_text().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority *.example.org {real.split(' ', 1)[1]}\n"
                     "broken line\n[x]:1 ssh-ed25519 ###\n" + real + "\n")
    with make_transport(sshd, known_hosts=str(known)) as t:
        assert t.run_script("echo ok").stdout == "ok\n"


@pytest.mark.service
def test_a_host_known_only_through_a_ca_is_refused_saying_why(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = sshd.known_hosts.read_text().split(" ", 1)[1].strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority [{sshd.host}]:* {key}\n")
    with make_transport(sshd, known_hosts=str(known)) as t, pytest.raises(HostKeyError) as err:
        t.run_script("true")
    assert "certificate authority" in str(err.value)
    assert "paramiko cannot verify host certificates" in str(err.value)


@pytest.mark.service
def test_the_global_known_hosts_file_is_read(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    global_file = tmp_path / "ssh_known_hosts"
    global_file.write_text(sshd.known_hosts.read_text())
    config = tmp_path / "ssh_config"
    config.write_text(f"Host *\n  GlobalKnownHostsFile {global_file}\n")
    target = resolve_target(sshd.host, user=sshd.user, port=sshd.port,
                            key=str(sshd.client_key), known_hosts=str(tmp_path / "empty"),
                            ssh_config=str(config))
    with SSHTransport(target=target) as t:
        assert t.run_script("echo global").stdout == "global\n"


@pytest.mark.service
def test_a_revoked_host_key_is_refused(sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    real = sshd.known_hosts.read_text().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"{real}\n@revoked * {real.split(' ', 1)[1]}\n")
    canary = tmp_path / "CANARY"
    with make_transport(sshd, known_hosts=str(known)) as t, \
            pytest.raises(HostKeyError, match="revoked"):
        t.run_script(f"touch {canary}")
    assert not canary.exists()


def bundle(tmp_path: Path, big: int = 0) -> Path:
    folder = tmp_path / "bundle"
    (folder / "files").mkdir(parents=True)
    (folder / "results").mkdir()
    for name, mode in (("job.sh", 0o755), ("spec.json", 0o644), ("probe.pyz", 0o644),
                       ("files/abc-client.key", 0o644)):
        (folder / name).write_text(f"{name}\n")
        (folder / name).chmod(mode)
    if big:
        (folder / "files" / "big.bin").write_bytes(b"\x01" * big)
    return folder


@pytest.mark.service
def test_every_staged_file_is_0600_and_every_folder_0700_on_the_cluster(sshd,  # type: ignore[no-untyped-def]
                                                                        tmp_path: Path) -> None:
    from hpctriton.runs.stage import stage_bundle

    remote = tmp_path / "work" / "runs" / "r1"
    with make_transport(sshd) as t:
        stage_bundle(t, bundle(tmp_path), str(remote))
    files = [p for p in remote.rglob("*") if p.is_file()]
    folders = [remote, *(p for p in remote.rglob("*") if p.is_dir())]
    assert {p.relative_to(remote).as_posix() for p in files} == {
        "job.sh", "spec.json", "probe.pyz", "files/abc-client.key"}
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in files} == dict.fromkeys(
        ("job.sh", "spec.json", "probe.pyz", "abc-client.key"), 0o600)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in folders} == dict.fromkeys(
        ("r1", "files", "results"), 0o700)
    assert stat.S_IMODE((tmp_path / "work").stat().st_mode) == 0o700  # umask 077


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KB file system (tmpfs), for a cluster whose disk is full."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        unavailable("tmpfs", done.stderr.strip() or "mount failed (not root?)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.service
def test_a_bundle_that_does_not_fit_gives_a_plain_message_and_leaves_nothing(  # type: ignore[no-untyped-def]
        sshd, tmp_path: Path, tiny_fs: Path) -> None:
    from hpctriton.runs.stage import stage_bundle

    remote = tiny_fs / "r1"
    with make_transport(sshd) as t, pytest.raises(TransportError) as err:
        stage_bundle(t, bundle(tmp_path, big=1 << 20), str(remote))
    text = str(err.value)
    assert "disk full" in text and "size mismatch" not in text, text
    assert "arrived with" in text
    assert "files/big.bin" in text
    assert not remote.exists()


@pytest.mark.service
def test_a_symlink_planted_in_a_remote_results_folder_is_not_followed(sshd,  # type: ignore[no-untyped-def]
                                                                      tmp_path: Path) -> None:
    from test_collect_safety import task_files
    from test_run_edge_cases import make_record

    from hpctriton.runs.collect import collect
    from hpctriton.schedulers.slurm import SlurmScheduler

    record = make_record(tmp_path, n=2)
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    for task in (0, 1):
        for name, data in task_files(task).items():
            path = Path(record.remote_dir) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    (Path(record.remote_dir) / "results/0/id_rsa").symlink_to(secret)
    (Path(record.remote_dir) / "results/1/root").symlink_to("/")
    with make_transport(sshd) as t:
        report = collect(t, SlurmScheduler(), record, [0, 1])
    assert sorted(report.fetched) == [0, 1]
    assert "id_rsa: a symbolic link" in report.skipped[0][0]
    assert "root: a symbolic link" in report.skipped[1][0]
    local = [p for p in record.results_dir.rglob("*") if not p.is_dir()]
    assert not any(p.name in ("id_rsa", "root") for p in local)
    assert not any(b"PRIVATE KEY" in p.read_bytes() for p in local if p.is_file())


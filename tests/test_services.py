"""Smoke tests of the real test services: sshd, Slurm (+ slurmdbd) and the stand-ins.

If these fail, every end-to-end test that builds on them is suspect: read these first.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import paramiko
import pytest
from fixtures_services import STANDIN_DIR, StandIns
from services.slurm import NoAccounting, Slurm
from services.sshd import Sshd

pytestmark = pytest.mark.service

HOSTILE = [
    "with space",
    "single'quote",
    'double"quote',
    "$(touch {marker})",
    "`touch {marker}`",
    "line1\nline2",
    "back\\slash",
    "semi;colon && echo owned",
    "*",
    "",
    "--bind=/nonexistent",
    "tab\there",
]


def remote(client: paramiko.SSHClient, command: str, timeout: float = 30) -> tuple[int, str, str]:
    """Run one remote command; returns (exit code, stdout, stderr)."""
    _, out, err = client.exec_command(command, timeout=timeout)
    stdout, stderr = out.read().decode(), err.read().decode()
    return out.channel.recv_exit_status(), stdout, stderr


def wait_states(slurm: Slurm, job: str, count: int, timeout: float = 60) -> dict[str, str]:
    """Poll ``squeue -t all -r`` until ``count`` tasks of ``job`` are COMPLETED."""
    deadline = time.monotonic() + timeout
    while True:
        out = slurm.run("squeue", "-h", "-t", "all", "-r", "-j", job, "-o", "%i|%T")
        states = dict(line.split("|") for line in out.split())
        done = [s for s in states.values() if s == "COMPLETED"]
        if len(done) == count or time.monotonic() > deadline:
            return states
        time.sleep(0.2)


def submit(slurm: Slurm, *args: str, env: dict[str, str] | None = None) -> str:
    """sbatch --parsable; the id before any ';cluster'."""
    argv = ["sbatch", "--parsable", *args]
    result = subprocess.run(
        argv, env=env or slurm.client_env(), capture_output=True, text=True, check=True
    )
    return result.stdout.strip().split(";")[0]


# --- sshd ---------------------------------------------------------------------------


def test_paramiko_logs_in_verifying_host_key(ssh_client: paramiko.SSHClient, sshd: Sshd) -> None:
    code, out, _ = remote(ssh_client, "id -un")
    assert (code, out.strip()) == (0, sshd.user)
    hostkey = ssh_client.get_transport().get_remote_server_key()  # type: ignore[union-attr]
    assert f"{hostkey.get_name()} {hostkey.get_base64()}" == sshd.host_public_key
    assert sshd.known_hosts.read_text().startswith(f"[127.0.0.1]:{sshd.port} ssh-ed25519 ")


def test_wrong_host_key_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    other = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))
    known = tmp_path / "known_hosts"
    known.write_text(f"{sshd.known_hosts_name} {other.get_name()} {other.get_base64()}\n")
    client = paramiko.SSHClient()
    client.load_host_keys(str(known))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    with pytest.raises(paramiko.BadHostKeyException):
        client.connect(**sshd.paramiko_kwargs())
    client.close()


def test_remote_path_is_setenv_path(ssh_client: paramiko.SSHClient, sshd: Sshd) -> None:
    """SetEnv's PATH survives ~/.bashrc: stand-ins and this venv's python come first."""
    script = 'printf "%s\\n" "$PATH" "$SLURM_CONF"; command -v python3 singularity apptainer'
    code, out, err = remote(ssh_client, script)
    assert code == 0, err
    path, slurm_conf, python3, singularity, apptainer = out.splitlines()
    assert path == sshd.env["PATH"]
    assert path.split(":")[:2] == [str(STANDIN_DIR), os.path.dirname(sys.executable)]
    assert slurm_conf == sshd.env["SLURM_CONF"]
    assert python3 == os.path.join(os.path.dirname(sys.executable), "python3")
    assert (singularity, apptainer) == (
        str(STANDIN_DIR / "singularity"),
        str(STANDIN_DIR / "apptainer"),
    )


def test_sftp_put_and_get(ssh_client: paramiko.SSHClient, tmp_path: Path) -> None:
    payload = os.urandom(200_000)
    local, back = tmp_path / "up.bin", tmp_path / "down.bin"
    local.write_bytes(payload)
    with ssh_client.open_sftp() as sftp:
        sftp.put(str(local), str(tmp_path / "remote.bin"))
        assert sftp.stat(str(tmp_path / "remote.bin")).st_size == len(payload)
        sftp.get(str(tmp_path / "remote.bin"), str(back))
    assert back.read_bytes() == payload


def test_openssh_client_logs_in(sshd: Sshd) -> None:
    result = subprocess.run(
        sshd.ssh_argv("echo", "hello", "$SHLVL"), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "hello"


# --- Slurm --------------------------------------------------------------------------


def test_trivial_job_finishes(slurm: Slurm, tmp_path: Path) -> None:
    job = submit(slurm, "-o", str(tmp_path / "out.%j"), "--wrap", "echo hello from $SLURM_JOB_ID")
    assert wait_states(slurm, job, 1) == {job: "COMPLETED"}
    line = slurm.run("scontrol", "show", "job", "-o", job)
    assert f"JobId={job} " in line and " JobState=COMPLETED " in line
    assert " ExitCode=0:0 " in line
    assert (tmp_path / f"out.{job}").read_text() == f"hello from {job}\n"


def test_job_array_and_sacct(slurm: Slurm) -> None:
    array = submit(slurm, "--array=0-2", "-o", "/dev/null", "--wrap", "sleep 1")
    states = wait_states(slurm, array, 3)
    assert states == {f"{array}_{i}": "COMPLETED" for i in range(3)}
    assert slurm.accounting
    rows: list[list[str]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # slurmdbd learns of job ends a moment later
        out = slurm.run(
            "sacct", "-n", "-P", "-X", "-o", "JobID,JobIDRaw,State,ExitCode", "-j", array
        )
        rows = [line.split("|") for line in out.split()]
        if len(rows) == 3 and all(r[2] == "COMPLETED" for r in rows):
            break
        time.sleep(0.5)
    assert sorted(r[0] for r in rows) == [f"{array}_{i}" for i in range(3)]
    assert all(r[2:] == ["COMPLETED", "0:0"] for r in rows)
    assert len({r[1] for r in rows}) == 3  # each task has its own raw job id


def test_array_limit_is_real(slurm: Slurm) -> None:
    """MaxArraySize=16: a 20-task array is refused, so clients must chunk."""
    result = subprocess.run(
        ["sbatch", "--parsable", f"--array=0-{slurm.max_array_size + 3}", "--wrap", "true"],
        env=slurm.client_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Invalid job array specification" in result.stderr


def test_no_accounting_view(slurm: Slurm, slurm_no_accounting_env: NoAccounting) -> None:
    view = slurm_no_accounting_env
    env = {**slurm.client_env(), **view.env}
    sacct = subprocess.run(["sacct", "-n", "-j", "1"], env=env, capture_output=True, text=True)
    assert (sacct.returncode, sacct.stderr.strip()) == (1, view.message)
    job = submit(slurm, "-o", "/dev/null", "--wrap", "true", env=env)  # same slurmctld
    assert wait_states(slurm, job, 1) == {job: "COMPLETED"}
    shim_env = {**slurm.client_env(), "PATH": f"{view.path_dir}:{os.environ['PATH']}"}
    shim = subprocess.run(["sacct", "-n"], env=shim_env, capture_output=True, text=True)
    assert (shim.returncode, shim.stderr.strip()) == (1, view.message)


def test_job_submitted_over_ssh_sees_session_env(
    ssh_client: paramiko.SSHClient, slurm: Slurm, tmp_path: Path
) -> None:
    out_file = tmp_path / "job.out"
    command = shlex.join(
        [
            "sbatch",
            "--parsable",
            "-o",
            str(out_file),
            "--wrap",
            "command -v python3; command -v singularity",
        ]
    )
    code, out, err = remote(ssh_client, command)
    assert code == 0, err
    job = out.strip().split(";")[0]
    assert wait_states(slurm, job, 1) == {job: "COMPLETED"}
    assert out_file.read_text().splitlines() == [
        os.path.join(os.path.dirname(sys.executable), "python3"),
        str(STANDIN_DIR / "singularity"),
    ]


# --- Singularity stand-in ------------------------------------------------------------


def standin_run(
    standin: StandIns, *args: str | bytes, cwd: Path
) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, **standin.env}
    argv = [str(standin.bin_dir / "singularity"), *args]
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, timeout=30)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "tritonserver.sif"
    path.write_text("placeholder image\n")
    return path


def test_standin_refuses_unknown_flag(standin: StandIns, image: Path, tmp_path: Path) -> None:
    result = standin_run(standin, "exec", "--no-such-flag", str(image), "true", cwd=tmp_path)
    assert result.returncode == 255
    assert b"unknown flag: '--no-such-flag'" in result.stderr
    assert standin.calls("singularity")[0]["args"][1] == "--no-such-flag"


def test_standin_refuses_missing_image_and_bind(standin: StandIns, tmp_path: Path) -> None:
    result = standin_run(standin, "exec", str(tmp_path / "none.sif"), "true", cwd=tmp_path)
    assert (result.returncode, result.stderr.startswith(b"FATAL:")) == (255, True)
    image = tmp_path / "x.sif"
    image.touch()
    bind = f"{tmp_path / 'missing'}:/data"
    result = standin_run(standin, "exec", "-B", bind, str(image), "true", cwd=tmp_path)
    assert result.returncode == 255 and b"mount source" in result.stderr


def test_standin_instances(standin: StandIns, image: Path, tmp_path: Path) -> None:
    unknown = standin_run(standin, "exec", "instance://triton", "true", cwd=tmp_path)
    assert unknown.returncode == 255 and b"no instance found" in unknown.stderr
    started = standin_run(standin, "instance", "start", "--nv", str(image), "triton", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    again = standin_run(standin, "instance", "start", str(image), "triton", cwd=tmp_path)
    assert again.returncode == 255 and b"already exists" in again.stderr
    inside = standin_run(standin, "exec", "instance://triton", "sh", "-c", "exit 7", cwd=tmp_path)
    assert inside.returncode == 7
    assert standin_run(standin, "instance", "stop", "triton", cwd=tmp_path).returncode == 0
    after = standin_run(standin, "exec", "instance://triton", "true", cwd=tmp_path)
    assert after.returncode == 255


def test_standin_logs_hostile_argv_byte_identical(
    standin: StandIns, image: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    hostile = [h.format(marker=marker) for h in HOSTILE]
    args = ["exec", "--bind", f"{tmp_path}:/work", str(image), "true", *hostile]
    result = standin_run(standin, *args, b"\xff\xfenot-utf8", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (call,) = standin.calls("singularity")
    logged = [os.fsencode(a) for a in call["args"]]
    assert logged == [os.fsencode(a) for a in args] + [b"\xff\xfenot-utf8"]
    assert not marker.exists()


def test_standin_over_ssh_logs_same_argv(
    ssh_client: paramiko.SSHClient, standin: StandIns, image: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    args = ["exec", str(image), "true", *(h.format(marker=marker) for h in HOSTILE)]
    code, _, err = remote(ssh_client, shlex.join(["singularity", *args]))
    assert code == 0, err
    (call,) = standin.calls("singularity")
    assert call["args"] == args
    assert not marker.exists()

"""Session-scoped pytest fixtures for the real services in ``tests/services``.

- ``slurm``: a one-node Slurm cluster with accounting (munged, MariaDB, slurmdbd,
  slurmctld, slurmd), see ``services.slurm.Slurm``.
- ``slurm_no_accounting_env``: how the same cluster looks from a site without slurmdbd
  (``services.slurm.NoAccounting``: a client config where the real ``sacct`` says
  "Slurm accounting storage is disabled", and a PATH folder with a ``sacct`` shim).
- ``sshd``: an OpenSSH server on 127.0.0.1 (``services.sshd.Sshd``). Every session it
  serves gets, through sshd's ``SetEnv``: ``PATH=<tests/stand-ins>:<this venv's bin>:
  <system PATH>``, ``SLURM_CONF`` of this session's test cluster and the stand-ins'
  ``HPCTRITON_STANDIN_LOG``/``HPCTRITON_STANDIN_STATE``. sshd does not start Slurm:
  ``SLURM_CONF`` names the file the ``slurm`` fixture writes when a test asks for it
  (so ``sshd`` alone costs no Slurm start, and ``sshd`` + ``slurm`` always agree).
- ``ssh_client_key``, ``ssh_known_hosts``: paths for clients; ``ssh_client``: a
  connected paramiko client that verifies the host key (RejectPolicy).
- ``standin``: the Singularity stand-in's folder, log and state, emptied for each test.

A service that cannot be had here (not root, binary missing) goes through
``service_policy.unavailable``: a skip on a laptop, a failure under ``CI=true``. A service
that is there but fails to start raises with the last lines of its log.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from service_policy import unavailable
from services.common import Unavailable, make_workdir, remove_tree
from services.slurm import NoAccounting, Slurm, no_accounting, slurm_conf_path, start_slurm
from services.sshd import Sshd, start_sshd

if TYPE_CHECKING:
    import paramiko

STANDIN_DIR = Path(__file__).resolve().parent / "stand-ins"
KEEP_ENV = "HPCTRITON_KEEP_SERVICE_DIRS"  # set to 1 to keep daemon logs/config after the run


@dataclass(frozen=True)
class StandIns:
    """The stand-in CLIs (``singularity``, ``apptainer``, ...) and what they record."""

    bin_dir: Path  # tests/stand-ins: first on PATH in sshd sessions
    log: Path  # HPCTRITON_STANDIN_LOG: one JSON line per call
    state_dir: Path  # HPCTRITON_STANDIN_STATE: running "instances"

    @property
    def env(self) -> dict[str, str]:
        """Variables that make a stand-in log here (merge into a local subprocess's env)."""
        return {
            "HPCTRITON_STANDIN_LOG": str(self.log),
            "HPCTRITON_STANDIN_STATE": str(self.state_dir),
        }

    def calls(self, program: str | None = None) -> list[dict[str, Any]]:
        """Logged calls, oldest first; ``program`` filters (e.g. "singularity")."""
        if not self.log.exists():
            return []
        records = [json.loads(line) for line in self.log.read_text().splitlines() if line]
        return [r for r in records if program is None or r.get("program") == program]

    def reset(self) -> None:
        """Forget earlier calls and instances."""
        self.log.write_text("")
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.state_dir.mkdir(parents=True)


def _keep() -> bool:
    return os.environ.get(KEEP_ENV, "") not in ("", "0")


@pytest.fixture(scope="session")
def standin_session(tmp_path_factory: pytest.TempPathFactory) -> StandIns:
    """Session-wide stand-in log/state (sshd's SetEnv names them, so they cannot move)."""
    root = tmp_path_factory.mktemp("standin")
    root.chmod(0o755)
    standins = StandIns(STANDIN_DIR, root / "calls.jsonl", root / "state")
    standins.reset()
    return standins


@pytest.fixture
def standin(standin_session: StandIns) -> StandIns:
    """The stand-ins with an empty log and no instances, for this test."""
    standin_session.reset()
    return standin_session


@pytest.fixture(scope="session")
def slurm_workdir() -> Iterator[Path]:
    """The test cluster's folder, fixed before it starts so sshd can name its SLURM_CONF."""
    workdir = make_workdir("slurm")
    yield workdir
    if not _keep():
        remove_tree(workdir)


@pytest.fixture(scope="session")
def slurm(slurm_workdir: Path) -> Iterator[Slurm]:
    """A real one-node Slurm 22.05 cluster with slurmdbd accounting, for the session."""
    try:
        cluster = start_slurm(workdir=slurm_workdir, keep_workdir=_keep())
    except Unavailable as exc:
        unavailable("slurm", str(exc))
        raise  # not reached: unavailable() skips or fails
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def slurm_no_accounting_env(slurm: Slurm, tmp_path_factory: pytest.TempPathFactory) -> NoAccounting:
    """The ``slurm`` cluster as a site without slurmdbd sees it (see NoAccounting)."""
    return no_accounting(slurm, tmp_path_factory.mktemp("no-accounting"))


@pytest.fixture(scope="session")
def sshd(slurm_workdir: Path, standin_session: StandIns) -> Iterator[Sshd]:
    """An OpenSSH server on 127.0.0.1 whose sessions see stand-ins and this venv first."""
    env = {"SLURM_CONF": str(slurm_conf_path(slurm_workdir)), **standin_session.env}
    path_first = [STANDIN_DIR, Path(sys.executable).parent]
    try:
        server = start_sshd(path_prepend=path_first, env=env, keep_workdir=_keep())
    except Unavailable as exc:
        unavailable("sshd", str(exc))
        raise  # not reached
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ssh_client_key(sshd: Sshd) -> Path:
    """The ed25519 private key (no passphrase) that ``sshd`` accepts."""
    return sshd.client_key


@pytest.fixture(scope="session")
def ssh_known_hosts(sshd: Sshd) -> Path:
    """A known_hosts file with ``[127.0.0.1]:PORT`` and sshd's host key."""
    return sshd.known_hosts


@pytest.fixture
def ssh_client(sshd: Sshd) -> Iterator[paramiko.SSHClient]:
    """A paramiko client logged into ``sshd``; the host key is verified, never trusted blindly."""
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(str(sshd.known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(**sshd.paramiko_kwargs())
    yield client
    client.close()


__all__ = [
    "StandIns",
    "slurm",
    "slurm_no_accounting_env",
    "slurm_workdir",
    "ssh_client",
    "ssh_client_key",
    "ssh_known_hosts",
    "sshd",
    "standin",
    "standin_session",
]

"""A real single-node Slurm cluster for tests: munged, MariaDB, slurmdbd, slurmctld, slurmd.

Everything (config, keys, state, spool, database, logs) lives in one temp folder; the
system's ``/etc/slurm`` and ``/etc/munge`` are never read or changed: clients find the
cluster through ``SLURM_CONF`` (``Slurm.env``) and talk to our own munged socket
(``AuthInfo=socket=...``). Start order matters: slurmdbd before slurmctld (otherwise
slurmctld dies with "we have no TRES from it"), and slurmdbd reads ``slurmdbd.conf``
from the folder of ``SLURM_CONF`` (mode 600, no ``-f`` option).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .common import (
    KEEP_FILE,
    MARK_VAR,
    START_DEADLINE_S,
    Cleanup,
    Daemon,
    ServiceError,
    free_ports,
    make_workdir,
    reap_orphans,
    remove_tree,
    require_binaries,
    require_root,
    run,
    service_env,
    start_daemon,
    sweep,
    wait_for,
    wait_for_port,
)

HOST = "127.0.0.1"
CLIENTS = ("sbatch", "squeue", "scontrol", "sinfo", "scancel", "sacct")
ACCOUNTING_BINARIES = ("slurmdbd", "sacctmgr", "mariadbd", "mariadb-install-db", "mariadb")
# sacct's exact answer (on stderr, exit 1) when the cluster has no accounting storage.
NO_ACCOUNTING_MESSAGE = "Slurm accounting storage is disabled"
FAKE_GPU_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom")


@dataclass
class Slurm:
    """A running one-node Slurm cluster; use ``env`` for every client command.

    ``max_array_size`` is Slurm's ``MaxArraySize``: array task ids must be below it
    (``--array=0-15`` at most), so a 20-task sweep has to be split by the client into
    several array jobs. ``cpus`` is what the node advertises (``config_overrides``: more
    than the machine's cores, so several array tasks run at once). ``gpus`` fake GRES
    ``gpu`` (harmless char devices behind them) let jobs that ask ``--gres=gpu:1`` schedule.
    ``accounting`` tells whether slurmdbd runs, i.e. whether ``sacct`` answers.
    """

    conf: Path
    env: dict[str, str]  # {"SLURM_CONF": ...}: merge into os.environ for client commands
    partition: str
    cluster_name: str
    max_array_size: int
    accounting: bool
    node: str
    cpus: int
    gpus: int
    user: str
    account: str | None
    workdir: Path
    logs: dict[str, Path]
    start_seconds: float
    _cleanup: Cleanup = field(repr=False)

    def client_env(self) -> dict[str, str]:
        """os.environ without inherited SLURM_* variables, plus this cluster's ``env``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env.update(self.env)
        return env

    def run(self, *argv: str, check: bool = True, timeout: float = 30.0) -> str:
        """Run a Slurm client command against this cluster; returns its stdout."""
        return run(argv, env=self.client_env(), timeout=timeout, check=check).stdout

    def stop(self) -> None:
        """Cancel jobs, stop all daemons (process groups + marked strays), remove files."""
        self._cleanup.close()
        if self._cleanup.errors:
            raise ServiceError("slurm teardown: " + "; ".join(self._cleanup.errors))


@dataclass(frozen=True)
class NoAccounting:
    """How a test sees a site without slurmdbd, next to the real cluster.

    ``env``: ``SLURM_CONF`` of a client-side copy of the config with
    ``AccountingStorageType=accounting_storage/none``: sbatch/squeue/scontrol still reach
    the same slurmctld, and the real ``sacct`` answers ``message`` (stderr, exit 1).
    ``path_dir``: a folder with a ``sacct`` *shim* that prints the same message and exits
    1, for tests that can only put a folder first on PATH; it simulates, nothing more.
    """

    env: dict[str, str]
    conf: Path
    path_dir: Path
    message: str


def slurm_conf_path(workdir: Path) -> Path:
    """Where ``start_slurm(workdir=...)`` writes slurm.conf (known before it starts)."""
    return workdir / "etc" / "slurm.conf"


def start_slurm(
    workdir: Path | None = None,
    accounting: bool = True,
    cpus: int = 8,
    gpus: int = 2,
    max_array_size: int = 16,
    partition: str = "debug",
    cluster_name: str = "hpctriton",
    keep_workdir: bool = False,
) -> Slurm:
    """Start munged (+ MariaDB + slurmdbd when ``accounting``), slurmctld and slurmd.

    Raises Unavailable without root or binaries, ServiceError with the failing daemon's
    log tail otherwise. Everything started is stopped again if a later step fails.
    """
    t0 = time.monotonic()
    require_root("slurm")
    reap_orphans()
    needed = ["munged", "slurmctld", "slurmd", *CLIENTS]
    binaries = require_binaries("slurm", *needed, *(ACCOUNTING_BINARIES if accounting else ()))
    workdir = workdir or make_workdir("slurm")
    layout = _Layout.create(workdir)
    if keep_workdir:
        (workdir / KEEP_FILE).touch()
    cleanup = Cleanup()
    cleanup.add("remove slurm workdir", lambda: remove_tree(workdir))
    cleanup.add("sweep slurm processes", lambda: sweep(workdir))
    user = pwd.getpwuid(os.geteuid()).pw_name
    node = socket.gethostname().split(".")[0]
    picked = free_ports(4)
    ports = {"ctld": picked[0], "slurmd": picked[1], "dbd": picked[2], "mysql": picked[3]}
    daemon_env = service_env(workdir, {"SLURM_CONF": str(layout.conf)})
    logs: dict[str, Path] = {}
    account = None
    with cleanup.on_error():
        munged = _start_munged(layout, binaries, daemon_env, cleanup)
        logs["munged"] = munged.log
        if accounting:
            logs.update(_start_accounting(layout, binaries, ports, daemon_env, cleanup))
        conf_text = _slurm_conf(
            layout, node, cluster_name, partition, cpus, gpus, max_array_size, ports, accounting
        )
        layout.conf.write_text(conf_text)
        (layout.conf.parent / "gres.conf").write_text(_gres_conf(node, gpus))
        if accounting:
            account = _register_cluster(binaries, daemon_env, cluster_name, user)
        logs.update(_start_controllers(layout, binaries, ports, node, daemon_env, cleanup))
    return Slurm(
        conf=layout.conf,
        env={"SLURM_CONF": str(layout.conf)},
        partition=partition,
        cluster_name=cluster_name,
        max_array_size=max_array_size,
        accounting=accounting,
        node=node,
        cpus=cpus,
        gpus=gpus,
        user=user,
        account=account,
        workdir=workdir,
        logs=logs,
        start_seconds=time.monotonic() - t0,
        _cleanup=cleanup,
    )


@dataclass(frozen=True)
class _Layout:
    """The folders of one cluster under its workdir."""

    root: Path
    conf: Path
    munge: Path
    state: Path
    spool: Path
    run: Path
    db: Path

    @classmethod
    def create(cls, root: Path) -> _Layout:
        root.chmod(0o755)  # munged checks every parent of its socket is traversable
        dirs = {name: root / name for name in ("etc", "munge", "state", "spool", "run", "db")}
        for path in dirs.values():
            path.mkdir(mode=0o755, exist_ok=True)
        return cls(
            root,
            slurm_conf_path(root),
            dirs["munge"],
            dirs["state"],
            dirs["spool"],
            dirs["run"],
            dirs["db"],
        )


def _start_munged(
    layout: _Layout, binaries: Mapping[str, str], env: Mapping[str, str], cleanup: Cleanup
) -> Daemon:
    """Our own munged with a fresh key and socket: the system's is neither used nor needed."""
    key = layout.munge / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    socket_path = layout.munge / "munge.socket"
    argv = [
        binaries["munged"],
        "--foreground",
        f"--socket={socket_path}",
        f"--key-file={key}",
        f"--pid-file={layout.munge / 'munged.pid'}",
        f"--seed-file={layout.munge / 'munged.seed'}",
        "--num-threads=4",
    ]
    daemon = start_daemon("munged", argv, layout.root, env)
    cleanup.add("stop munged", daemon.stop)
    wait_for(socket_path.exists, START_DEADLINE_S, f"munge socket {socket_path}", daemon)
    return daemon


def _start_accounting(
    layout: _Layout,
    binaries: Mapping[str, str],
    ports: Mapping[str, int],
    env: Mapping[str, str],
    cleanup: Cleanup,
) -> dict[str, Path]:
    """MariaDB in its own datadir, a ``slurm`` DB user, then slurmdbd listening."""
    password = secrets.token_hex(12)
    mysql = _start_mariadb(layout, binaries, ports["mysql"], env, cleanup)
    grant = (
        f"CREATE USER 'slurm'@'{HOST}' IDENTIFIED BY '{password}';"
        f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{HOST}';"
    )
    run(
        [
            binaries["mariadb"],
            "--no-defaults",
            f"--socket={layout.db / 'mysql.sock'}",
            "-u",
            "root",
            "-e",
            grant,
        ],
        env=env,
    )
    dbd_conf = layout.conf.parent / "slurmdbd.conf"
    dbd_conf.write_text(_slurmdbd_conf(layout, ports, password))
    dbd_conf.chmod(0o600)
    slurmdbd = start_daemon("slurmdbd", [binaries["slurmdbd"], "-D"], layout.root, env)
    cleanup.add("stop slurmdbd", slurmdbd.stop)
    wait_for_port(slurmdbd, ports["dbd"], START_DEADLINE_S)
    return {"mariadb": mysql.log, "slurmdbd": slurmdbd.log}


def _start_mariadb(
    layout: _Layout,
    binaries: Mapping[str, str],
    port: int,
    env: Mapping[str, str],
    cleanup: Cleanup,
) -> Daemon:
    """A throw-away MariaDB on 127.0.0.1:port; --no-defaults keeps /etc/mysql out of it."""
    data = layout.db / "data"
    run(
        [
            binaries["mariadb-install-db"],
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            "--skip-name-resolve",
        ],
        env=env,
        timeout=START_DEADLINE_S,
    )
    argv = [
        binaries["mariadbd"],
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={layout.db / 'mysql.sock'}",
        f"--pid-file={layout.db / 'mariadb.pid'}",
        f"--port={port}",
        f"--bind-address={HOST}",
        "--user=root",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=64M",
    ]
    daemon = start_daemon("mariadb", argv, layout.root, env)
    cleanup.add("stop mariadb", daemon.stop)
    wait_for_port(daemon, port, START_DEADLINE_S)
    return daemon


def _register_cluster(
    binaries: Mapping[str, str], env: Mapping[str, str], cluster: str, user: str
) -> str:
    """sacctmgr: the cluster, an account and our user, so jobs get accounted."""
    account = "hpctriton"
    sacctmgr = [binaries["sacctmgr"], "-i"]
    run([*sacctmgr, "add", "cluster", cluster], env=env)
    run(
        [
            *sacctmgr,
            "add",
            "account",
            account,
            f"Cluster={cluster}",
            "Description=hpctriton tests",
            "Organization=hpctriton",
        ],
        env=env,
    )
    run([*sacctmgr, "add", "user", user, f"Account={account}", f"Cluster={cluster}"], env=env)
    return account


def _start_controllers(
    layout: _Layout,
    binaries: Mapping[str, str],
    ports: Mapping[str, int],
    node: str,
    env: Mapping[str, str],
    cleanup: Cleanup,
) -> dict[str, Path]:
    """slurmctld, then slurmd; ready when sinfo shows the node idle."""
    ctld = start_daemon("slurmctld", [binaries["slurmctld"], "-D", "-i"], layout.root, env)
    cleanup.add("stop slurmctld", ctld.stop)
    wait_for_port(ctld, ports["ctld"], START_DEADLINE_S)
    slurmd = start_daemon("slurmd", [binaries["slurmd"], "-D", "-N", node], layout.root, env)
    cleanup.add("stop slurmd", slurmd.stop)
    cleanup.add("cancel jobs", lambda: _cancel_all(binaries, env))

    def node_idle() -> bool:
        if not ctld.alive():
            raise ctld.failure("died while slurmd registered")
        argv = [binaries["sinfo"], "-h", "-n", node, "-o", "%t"]
        return run(argv, env=env, check=False, timeout=10).stdout.strip() == "idle"

    wait_for(node_idle, START_DEADLINE_S, f"node {node} idle in sinfo", slurmd, interval=0.2)
    return {"slurmctld": ctld.log, "slurmd": slurmd.log}


def _cancel_all(binaries: Mapping[str, str], env: Mapping[str, str]) -> None:
    """Cancel every job and wait (KillWait=2) so job steps end before slurmd stops."""
    ids = run([binaries["squeue"], "-h", "-o", "%A"], env=env, check=False).stdout.split()
    if not ids:
        return
    run([binaries["scancel"], *sorted(set(ids))], env=env, check=False)

    def no_jobs() -> bool:
        out = run([binaries["squeue"], "-h", "-o", "%A"], env=env, check=False, timeout=10)
        return out.returncode == 0 and not out.stdout.strip()

    with contextlib.suppress(ServiceError):  # the sweep after the stops kills what is left
        wait_for(no_jobs, 10, "cancelled jobs to end", interval=0.2)


def _slurm_conf(
    layout: _Layout,
    node: str,
    cluster: str,
    partition: str,
    cpus: int,
    gpus: int,
    max_array_size: int,
    ports: Mapping[str, int],
    accounting: bool,
) -> str:
    """slurm.conf of a one-node cluster tuned for fast tests (see module docstring)."""
    storage = (
        [
            "AccountingStorageType=accounting_storage/slurmdbd",
            f"AccountingStorageHost={HOST}",
            f"AccountingStoragePort={ports['dbd']}",
            # the munge socket for slurmdbd connections (AuthInfo is not used for those)
            f"AccountingStoragePass={layout.munge / 'munge.socket'}",
            "JobAcctGatherType=jobacct_gather/linux",
        ]
        if accounting
        else [
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
        ]
    )
    lines = [
        f"ClusterName={cluster}",
        f"SlurmctldHost={node}({HOST})",
        f"SlurmctldPort={ports['ctld']}",
        f"SlurmdPort={ports['slurmd']}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={layout.munge / 'munge.socket'}",
        f"StateSaveLocation={layout.state}",
        f"SlurmdSpoolDir={layout.spool}",
        f"SlurmctldPidFile={layout.run / 'slurmctld.pid'}",
        f"SlurmdPidFile={layout.run / 'slurmd.pid'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        # Backfill every second (default 30 s): measured here, a trivial job finishes
        # ~0.8 s after sbatch instead of 2-3 s, a 3-task array of `sleep 1` in 2 s, not 4 s.
        "SchedulerParameters=bf_interval=1",
        "SlurmdParameters=config_overrides",
        "ReturnToService=2",
        "MpiDefault=none",
        "JobCompType=jobcomp/none",
        f"MaxArraySize={max_array_size}",
        "MinJobAge=300",
        "KillWait=2",
        "OverTimeLimit=0",
        "InactiveLimit=0",
        "SlurmctldTimeout=60",
        "SlurmdTimeout=300",
        "MessageTimeout=10",
        *storage,
        "GresTypes=gpu" if gpus else "",
        f"NodeName={node} NodeAddr={HOST} NodeHostname={node} CPUs={cpus} "
        f"RealMemory={_memory_mb()}{f' Gres=gpu:{gpus}' if gpus else ''} State=UNKNOWN",
        f"PartitionName={partition} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
    ]
    return "\n".join(line for line in lines if line) + "\n"


def _gres_conf(node: str, gpus: int) -> str:
    """Fake GPUs: gres/gpu drops file-less entries, so each borrows a harmless char device."""
    if gpus > len(FAKE_GPU_DEVICES):
        raise ValueError(f"at most {len(FAKE_GPU_DEVICES)} fake GPUs")
    return "".join(f"NodeName={node} Name=gpu File={dev}\n" for dev in FAKE_GPU_DEVICES[:gpus])


def _slurmdbd_conf(layout: _Layout, ports: Mapping[str, int], password: str) -> str:
    """slurmdbd.conf: loopback only, our munge socket, our MariaDB."""
    return (
        "\n".join(
            [
                "AuthType=auth/munge",
                f"AuthInfo=socket={layout.munge / 'munge.socket'}",
                "DbdHost=localhost",
                f"DbdAddr={HOST}",
                f"DbdPort={ports['dbd']}",
                "SlurmUser=root",
                f"PidFile={layout.run / 'slurmdbd.pid'}",
                "StorageType=accounting_storage/mysql",
                f"StorageHost={HOST}",
                f"StoragePort={ports['mysql']}",
                "StorageUser=slurm",
                f"StoragePass={password}",
                "StorageLoc=slurm_acct_db",
            ]
        )
        + "\n"
    )


def _memory_mb() -> int:
    """The machine's memory in MB, so jobs asking --mem are not refused for RealMemory=1."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


def no_accounting(slurm: Slurm, folder: Path) -> NoAccounting:
    """A client view of ``slurm`` without accounting, under ``folder`` (see NoAccounting)."""
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "slurm.conf"
    lines = [
        line
        for line in slurm.conf.read_text().splitlines()
        if not line.startswith(("AccountingStorage", "JobAcctGatherType"))
    ]
    lines.append("AccountingStorageType=accounting_storage/none")
    conf.write_text("\n".join(lines) + "\n")
    shim_dir = folder / "bin"
    shim_dir.mkdir(exist_ok=True)
    shim = shim_dir / "sacct"
    shim.write_text(
        "#!/bin/sh\n"
        "# Shim: answers like sacct on a cluster without slurmdbd (seen on Slurm 22.05).\n"
        f"echo '{NO_ACCOUNTING_MESSAGE}' >&2\nexit 1\n"
    )
    shim.chmod(0o755)
    return NoAccounting({"SLURM_CONF": str(conf)}, conf, shim_dir, NO_ACCOUNTING_MESSAGE)


__all__ = [
    "MARK_VAR",
    "NO_ACCOUNTING_MESSAGE",
    "NoAccounting",
    "Slurm",
    "no_accounting",
    "slurm_conf_path",
    "start_slurm",
]

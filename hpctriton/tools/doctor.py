"""``hpctriton doctor``: is the cluster side ready for a run?

SSH and the host key, the workdir, the container runtime and image (or the
interpreter and its tritonclient), the Triton server as seen from the login node, and
the scheduler's own checks (scheduler commands, partition, accounting; DiCOS ping).
All generic checks run in one remote script.
"""

from __future__ import annotations

from hpctriton.config import Config
from hpctriton.errors import HpctritonError
from hpctriton.schedulers import DoctorCheck, get_scheduler
from hpctriton.shell import templates as templating
from hpctriton.transport import Transport, open_transport

#: The server's ports doctor tries to reach from the login node.
PORTS = ("http_port", "grpc_port", "metrics_port")


def _generic_script(config: Config, workdir: str, container_bin: str | None,
                    python: str | None, prologue: list[str]) -> str:
    c = config.container
    server = config.server
    return templating.render(
        "hpctriton.tools:doctor.sh.j2", prologue=prologue, workdir=workdir,
        binary=None if c.runtime == "none" else container_bin or c.runtime,
        image=c.image, python=python, host=server.host.strip("[]"),
        ports=[(name, int(port)) for name in PORTS if (port := getattr(server, name))])


def run_doctor(config: Config, cluster: str | None = None,
               transport: Transport | None = None) -> list[DoctorCheck]:
    """Every check, in order; a failed connection is reported as the only result."""
    _, cluster_cfg = config.target(cluster)
    own = transport is None
    transport = transport or open_transport(cluster_cfg)
    checks: list[DoctorCheck] = []
    try:
        try:
            home = transport.home()
        except HpctritonError as exc:
            return [DoctorCheck(f"connect to {transport.label}", False, str(exc))]
        checks.append(DoctorCheck(f"connect to {transport.label}", True,
                                  f"host key verified, home {home}"
                                  if transport.label != "localhost" else "this machine"))
        python = cluster_cfg.python
        out = transport.run_script(_generic_script(
            config, cluster_cfg.workdir, cluster_cfg.container_bin, python,
            cluster_cfg.prologue)).stdout
        server = config.server.host
        for line in out.splitlines():
            word = line.split(" ")
            if line.startswith("@@WORKDIR"):
                _, verdict, folder = (line.split(" ", 2) + ["", ""])[:3]
                checks.append(DoctorCheck("workdir writable", verdict == "ok", folder))
            elif line.startswith("@@BIN"):
                found = word[1] != "-"
                checks.append(DoctorCheck(
                    f"{config.container.runtime} found", found, word[1] if found else
                    "not on PATH: set container_bin or a prologue line (module load …)"))
            elif line.startswith("@@IMAGE"):
                checks.append(DoctorCheck("image readable", word[1] == "ok",
                                          str(config.container.image)))
            elif line.startswith("@@PYTHON"):
                detail = line[9:]
                ok = detail[:1].isdigit()
                checks.append(DoctorCheck("interpreter has tritonclient", ok,
                                          f"{python}: Python {detail}" if ok else detail))
            elif line.startswith("@@PORT"):
                port = getattr(config.server, word[1])
                checks.append(DoctorCheck(
                    f"server {server}:{port} reachable from the login node", word[2] == "ok",
                    "TCP connect" if word[2] == "ok" else
                    "no TCP connection (worker nodes may still reach it)", optional=True))
        checks += get_scheduler(cluster_cfg.backend).doctor(transport, cluster_cfg)
    finally:
        if own:
            transport.close()
    return checks

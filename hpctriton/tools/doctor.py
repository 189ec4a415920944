"""``hpctriton doctor``: is the cluster side ready for a run?

SSH and the host key, the workdir, the container runtime and image (or the
interpreter and its tritonclient), the Triton server as seen from the login node, and
the backend's own checks (scheduler commands, partition, accounting; DiCOS ping).
All generic checks run in one remote script.
"""

from __future__ import annotations

import shlex

from hpctriton.config.models import Config
from hpctriton.errors import HpctritonError
from hpctriton.render.bundle import resolve_target
from hpctriton.schedulers.registry import DoctorCheck, get_backend
from hpctriton.transport import Transport, open_transport


def _generic_script(config: Config, workdir: str, container_bin: str | None,
                    python: str | None, prologue: list[str]) -> str:
    c = config.container
    lines = [*prologue, f"wd={shlex.quote(workdir)}",
             'case "$wd" in /*) ;; *) wd="$HOME/$wd" ;; esac',
             'if mkdir -p "$wd" 2>/dev/null && touch "$wd/.hpctriton-doctor" 2>/dev/null; then '
             'rm -f "$wd/.hpctriton-doctor"; echo "@@WORKDIR ok $wd"; '
             'else echo "@@WORKDIR fail $wd"; fi']
    if c.runtime != "none":
        binary = shlex.quote(container_bin or c.runtime)
        lines.append(f'printf "@@BIN %s\\n" "$(command -v {binary} || echo -)"')
        if c.image:
            image = shlex.quote(c.image)
            lines.append(f'if [ -r {image} ]; then echo "@@IMAGE ok"; else echo "@@IMAGE fail"; fi')
    elif python:
        py = shlex.quote(python)
        lines.append(f'printf "@@PYTHON %s\\n" "$({py} -c \'import sys, tritonclient; '
                     f'print(sys.version.split()[0])\' 2>&1 | tail -n1)"')
    server = config.server
    for name in ("http_port", "grpc_port", "metrics_port"):
        port = getattr(server, name)
        if port:
            # host and port reach the inner bash as arguments, never as code
            lines.append(
                "if timeout 5 bash -c 'exec 3<>\"/dev/tcp/$1/$2\"' _ "
                f"{shlex.quote(server.host.strip('[]'))} {int(port)} 2>/dev/null; then "
                f'echo "@@PORT {name} ok"; else echo "@@PORT {name} fail"; fi')
    return "\n".join(lines) + "\ntrue\n"


def run_doctor(config: Config, cluster: str | None = None,
               transport: Transport | None = None) -> list[DoctorCheck]:
    """Every check, in order; a failed connection is reported as the only result."""
    name, cluster_cfg, backend_name = resolve_target(config, cluster, None)
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
                checks.append(DoctorCheck("workdir writable", word[1] == "ok", word[2]))
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
        checks += get_backend(backend_name).doctor(transport, cluster_cfg, config)
    finally:
        if own:
            transport.close()
    return checks

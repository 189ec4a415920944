"""Writes the run folders ``tests/data/report_*`` the report tests read, by running the
real probe, through the local backend (render, submit, ``job.sh``, collect), against
real Triton servers started by ``hpctriton.testing.start_triton``. Run it by hand after
a change to what the probe writes, then commit what it wrote (a few minutes)::

    .venv/bin/python tests/data/make_report_fixtures.py

The servers serve copies of the demo models (``hpctriton/demo_models``) under other
names and delays, so that the runs differ in known directions:

* ``report_run_a`` and ``report_run_b``: one config (health, metadata, keepalive,
  infer, closed-loop load at concurrency 1, 2, 4, 8 over gRPC, statistics) against two
  servers that each serve two copies of the demo model ``paced``. In run A both,
  ``paced_high`` and ``paced_low``, answer after 10 ms; in run B after 6 ms and 14 ms,
  as if priority scheduling favoured the first (seed 004's setting).
* ``report_sweep``: a sweep over ``server.host`` (``models: [paced]`` on every point)
  against three servers on three loopback addresses with the same ports: on 127.0.0.1
  ``paced`` answers after 20 ms (at most 50 requests/s), on 127.0.0.2 it is the demo
  model ``failing`` deployed as ``paced`` (every inference fails), on 127.0.0.3 it
  answers after 10 ms. Open loop at 20, 40 and 60 requests/s: at 60/s the queue of
  127.0.0.1 grows all along, and its latency never settles (NOT STABLE). Task 3
  (127.0.0.4) dies before the probe starts: a cluster prologue line exits 127 there,
  as on a node without the interpreter.

Only what reports read is kept: ``run.json`` and each task's ``results.json`` and
``state.json``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hpctriton.api import Run, submit
from hpctriton.config import config_from_data
from hpctriton.testing import DEMO_MODELS, TritonServer, free_port, start_triton

HERE = Path(__file__).resolve().parent
CHECKS: list[Any] = ["health", "metadata", "keepalive", "infer"]
#: Short windows: figures settle in seconds on a CPU-only machine.
WINDOWS = {"warmup_s": 0.5, "window_s": 1.0,
           "stability": {"windows": 3, "percent": 10, "max_trials": 5}}
CLOSED_LOOP = {"load": {"protocol": "grpc", "concurrency": [1, 2, 4, 8], **WINDOWS}}
OPEN_LOOP = {"load": {"protocol": "grpc", "request_rate": [20, 40, 60], **WINDOWS}}
SWEEP_HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
#: The sweep's last task never gets to the probe (see the module docstring).
NO_INTERPRETER = ('[ "$HPCTRITON_TASK" != 3 ] || { echo "hpctriton fixture: no python3 '
                  'on this node" >&2; exit 127; }')


def model_repository(folder: Path, models: dict[str, tuple[str, float | None]]) -> Path:
    """A model repository of demo models under new names: ``{name: (demo model,
    delay_s or None to keep the demo's)}``."""
    for name, (demo, delay_s) in models.items():
        source = Path(DEMO_MODELS) / demo
        (folder / name / "1").mkdir(parents=True)
        shutil.copy(source / "1" / "model.py", folder / name / "1" / "model.py")
        config = (source / "config.pbtxt").read_text()
        config = config.replace(f'name: "{demo}"', f'name: "{name}"')
        if delay_s is not None:
            config = re.sub(r'(key: "delay_s" value: \{ string_value: )"[^"]*"',
                            rf'\g<1>"{delay_s}"', config)
        (folder / name / "config.pbtxt").write_text(config)
    return folder


def run_config(work: Path, name: str, server: dict[str, Any], models: list[str],
               checks: list[Any], sweep: dict[str, list[Any]] | None = None,
               prologue: list[str] | None = None) -> Path:
    """Submit one run with the local backend, wait, collect; returns its run folder."""
    data: dict[str, Any] = {
        "name": name, "server": server, "models": models,
        "checks": [*checks, "statistics"], "container": {"runtime": "none"},
        "clusters": {"fixtures": {"backend": "local", "workdir": str(work / "remote"),
                                  "prologue": prologue or []}},
        "runs_dir": str(work / "runs")}
    if sweep:
        data["sweep"] = sweep
    run = submit(config_from_data(data, base_dir=work), wait=True, timeout_s=600)
    assert isinstance(run, Run)
    run.close()
    return run.path


def ports_of(server: TritonServer) -> dict[str, Any]:
    return {"host": server.host, "http_port": server.http_port,
            "grpc_port": server.grpc_port, "metrics_port": server.metrics_port}


def keep(run_dir: Path, name: str) -> None:
    """Copy what reports read into ``tests/data/<name>``, replacing what was there."""
    target = HERE / name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    shutil.copy(run_dir / "run.json", target / "run.json")
    for task_dir in sorted((run_dir / "results").iterdir()):
        if not task_dir.name.isdigit():
            continue
        (target / "results" / task_dir.name).mkdir(parents=True)
        for file in ("results.json", "state.json"):
            if (task_dir / file).is_file():
                shutil.copy(task_dir / file, target / "results" / task_dir.name / file)
    print(f"wrote {target}")


def two_model_run(work: Path, name: str, folder: str, high_s: float, low_s: float) -> None:
    repo = model_repository(work / f"models-{name}", {"paced_high": ("paced", high_s),
                                                      "paced_low": ("paced", low_s)})
    server = start_triton(str(repo), ready_timeout_s=120)
    try:
        run_dir = run_config(work / name, name, ports_of(server), ["paced_high", "paced_low"],
                             [*CHECKS, CLOSED_LOOP])
    finally:
        server.stop()
    keep(run_dir, folder)


def sweep_run(work: Path) -> None:
    deployments = [("paced", 0.02), ("failing", None), ("paced", 0.01)]
    http, grpc, metrics = free_port(), free_port(), free_port()
    servers = []
    try:
        for host, (demo, delay_s) in zip(SWEEP_HOSTS, deployments, strict=False):
            repo = model_repository(work / f"models-{host}", {"paced": (demo, delay_s)})
            servers.append(start_triton(str(repo), host=host, http_port=http, grpc_port=grpc,
                                        metrics_port=metrics, ready_timeout_s=120))
        server = {**ports_of(servers[0]), "host": SWEEP_HOSTS[0]}
        run_dir = run_config(work / "sweep", "sweep", server, ["paced"], [*CHECKS, OPEN_LOOP],
                             sweep={"server.host": SWEEP_HOSTS, "models": [["paced"]]},
                             prologue=[NO_INTERPRETER])
    finally:
        for s in servers:
            s.stop()
    keep(run_dir, "report_sweep")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hpctriton-fixtures-") as tmp:
        work = Path(tmp)
        two_model_run(work, "triton", "report_run_a", high_s=0.010, low_s=0.010)
        two_model_run(work, "priority", "report_run_b", high_s=0.006, low_s=0.014)
        sweep_run(work)


if __name__ == "__main__":
    main()

"""Render a job bundle: ``job.sh``, ``probe.pyz``, ``spec.json`` and the scheduler's extras.

The bundle is written to a temporary folder beside the target and renamed into place
at the end, so a bad input leaves nothing half-written.

Example::

    >>> from hpctriton import load_config, render_bundle
    >>> bundle = render_bundle(load_config("examples/asgc-slurm.yaml"), "out/",
    ...                        cluster="asgc-slurm")
    >>> sorted(p.name for p in bundle.path.iterdir())
    ['job.sh', 'probe.pyz', 'results', 'spec.json']
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpctriton.config import ClusterConfig, Config, literal_secret_headers, load_tasks
from hpctriton.errors import ConfigError, RenderError
from hpctriton.render.zipapp import probe_zipapp
from hpctriton.schedulers import RenderContext, Scheduler, get_scheduler
from hpctriton.shell import quoting
from hpctriton.shell import templates as templating
from hpctriton.shell.quoting import Raw
from hpctriton.transport.base import STAGED_DIR_MODE, STAGED_FILE_MODE
from hpctriton_probe.spec import SPEC_SCHEMA_VERSION, CheckSpec, TaskSpec

BUNDLE_PY = '"$HPCTRITON_BUNDLE"'
FILES_DIR = "files"

log = logging.getLogger("hpctriton.render")


def make_private(root: Path) -> None:
    """The one rule for a bundle's modes: every file 0600, every folder 0700 (the same
    as its staged copy, ``transport.base.STAGED_*``). spec.json may hold header values,
    job.sh the values of ``env``, ``files/`` a TLS key; the jobs run as the user who
    rendered them, so nobody else needs to read any of it. Scripts are run as ``bash
    job.sh`` and ``sbatch job.sh``, never through their execute bit."""
    root.chmod(STAGED_DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            os.chmod(os.path.join(folder, name), STAGED_DIR_MODE)
        for name in files:
            os.chmod(os.path.join(folder, name), STAGED_FILE_MODE)


def header_warnings(config: Config) -> list[str]:
    """A warning for each header whose value is written literally into spec.json and
    looks like a secret (every sweep point's server is looked at)."""
    seen: set[int] = set()
    out: list[str] = []
    for _point, cfg in config.points():
        if id(cfg.server) in seen:
            continue
        seen.add(id(cfg.server))
        for name in literal_secret_headers(cfg.server.headers):
            text = (f"server.headers.{name} holds a literal secret, which is written into "
                    f"the bundle's spec.json (mode 0600) and its staged copy: write it as "
                    f"${{VAR}} (e.g. \"Bearer ${{TRITON_TOKEN}}\") and set VAR in the job's "
                    "environment, so the secret stays out of files")
            if text not in out:
                out.append(text)
    return out


@dataclass(frozen=True)
class Bundle:
    """A rendered bundle on the local disk."""

    path: Path
    run_id: str
    backend: str
    cluster: str | None
    n_tasks: int
    #: Each task's sweep point (dotted key -> value), in task order.
    points: list[dict[str, Any]]


# ----------------------------------------------------------------------- run ids


def _slug(text: str, limit: int = 24) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return slug[:limit].strip("-") or "run"


def make_run_id(name: str, now: _dt.datetime | None = None) -> str:
    """``20261121-224033-asgc-slurm-1a2b``: sortable, readable, unique enough."""
    now = now or _dt.datetime.now()
    return f"{now:%Y%m%d-%H%M%S}-{_slug(name)}-{secrets.token_hex(2)}"


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> str:
    """Run ids name folders locally and on the cluster: a safe character set only."""
    if not _RUN_ID.fullmatch(run_id):
        raise ConfigError(
            f"run id {run_id!r} may use only letters, digits, '.', '_' and '-' "
            "(at most 128 characters, starting with a letter or digit)", field="--run-id")
    return run_id


# ------------------------------------------------------------------------ files


class _FileStager:
    """Copies files named in check options / TLS into the bundle's ``files/``."""

    def __init__(self, base_dir: Path, bundle_dir: Path) -> None:
        self.base_dir, self.bundle_dir = base_dir, bundle_dir
        self.copied: dict[Path, str] = {}

    def stage(self, value: str, where: str) -> str:
        path = Path(value).expanduser()
        local = path if path.is_absolute() else self.base_dir / path
        if local.is_file():
            local = local.resolve()
            if local not in self.copied:
                digest = hashlib.sha256(str(local).encode()).hexdigest()[:8]
                name = f"{FILES_DIR}/{digest}-{local.name}"
                target = self.bundle_dir / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local, target)
                self.copied[local] = name
            return self.copied[local]
        if path.is_absolute():
            # a path on the cluster, used as written (~ is the remote home there)
            return value
        raise ConfigError(f"file not found: {local}", field=where)

    def stage_fields(self, obj: Any, where: str) -> Any:
        """A copy of dataclass ``obj`` with every file field staged."""
        if obj is None or not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            return obj
        changes: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            sub = f"{where}.{f.name}"
            if f.metadata.get("file") and value is not None:
                if isinstance(value, Mapping):
                    changes[f.name] = {k: self.stage(v, f"{sub}.{k}") for k, v in value.items()}
                else:
                    changes[f.name] = self.stage(value, sub)
            elif dataclasses.is_dataclass(value):
                changes[f.name] = self.stage_fields(value, sub)
        return dataclasses.replace(obj, **changes) if changes else obj


# ------------------------------------------------------------------------- spec


def task_specs(config: Config, stager: _FileStager | None = None) -> list[TaskSpec]:
    """One :class:`TaskSpec` per sweep point, file paths staged when a stager is given.

    What points share (``Config.points`` shares every section a point does not change)
    stays one object here too, so :func:`spec_files` writes it once.
    """
    made: dict[tuple[str, int], tuple[Any, Any]] = {}

    def once(kind: str, obj: Any, build: Any) -> Any:
        # keyed by identity; ``obj`` is kept in the value, so its id is never reused
        key = (kind, id(obj))
        if key not in made:
            made[key] = (obj, build())
        return made[key][1]

    specs = []
    for index, (point, cfg) in enumerate(config.points()):
        server = once("server", cfg.server, lambda cfg=cfg: (
            stager.stage_fields(cfg.server, "server") if stager else cfg.server))
        checks = once("checks", cfg.checks, lambda cfg=cfg: [
            CheckSpec(c.name, stager.stage_fields(c.options, f"checks.{c.name}")
                      if stager else c.options) for c in cfg.checks])
        models = once("models", cfg.models, lambda cfg=cfg: list(cfg.models))
        specs.append(TaskSpec(task=index, server=server, models=models, checks=checks,
                              probe=cfg.probe, point=dict(point)))
    return specs


#: The sections of a task that differ between sweep points (``TaskSpec``'s fields but
#: its index and point).
TASK_SECTIONS = ("server", "models", "checks", "probe")
#: The file of a sweep's points, beside spec.json (layout 2; docs/bundle.md).
POINTS_FILE = "points.jsonl"


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _changes(common: Any, mine: Any, path: tuple[str, ...]) -> list[list[Any]]:
    """``[[keys], value]`` pairs that turn ``common`` into ``mine``: mappings with the
    same keys are compared key by key, anything else is replaced whole."""
    if common == mine:
        return []
    if isinstance(common, dict) and isinstance(mine, dict) and common.keys() == mine.keys():
        out: list[list[Any]] = []
        for key in mine:
            out += _changes(common[key], mine[key], (*path, key))
        return out
    return [[list(path), mine]]


def spec_files(run_id: str, tasks: list[TaskSpec]) -> tuple[dict[str, Any], str | None]:
    """``spec.json``'s content (layout 2) and the text of ``points.jsonl`` (None for a
    single task).

    spec.json holds what every task runs once (``task``: the first point's sections);
    each task's line of points.jsonl holds its point and its changes to that, padded to
    one width, so a task of a sweep of 10,000 reads spec.json and its own line: a few
    KB, whatever the size of the sweep.
    """
    first = tasks[0]
    plain: dict[int, Any] = {}

    def as_plain(obj: Any) -> Any:
        if id(obj) not in plain:
            plain[id(obj)] = (obj, _plain(obj))
        return plain[id(obj)][1]

    common = {name: as_plain(getattr(first, name)) for name in TASK_SECTIONS}
    spec: dict[str, Any] = {"schema_version": SPEC_SCHEMA_VERSION, "run_id": run_id,
                            "n_tasks": len(tasks), "task": common, "points": None}
    if len(tasks) == 1 and not first.point:
        return spec, None
    diffs: dict[tuple[str, int], list[list[Any]]] = {}
    lines = []
    for task in tasks:
        changes: list[list[Any]] = []
        for name in TASK_SECTIONS:
            obj = getattr(task, name)
            if obj is getattr(first, name):
                continue
            key = (name, id(obj))
            if key not in diffs:
                diffs[key] = _changes(common[name], as_plain(obj), (name,))
            changes += diffs[key]
        lines.append(json.dumps({"task": task.task, "point": task.point, "changes": changes},
                                separators=(",", ":")))
    width = max(len(line) for line in lines) + 1
    spec["points"] = {"file": POINTS_FILE, "line_bytes": width}
    return spec, "".join(line.ljust(width - 1) + "\n" for line in lines)


def spec_document(run_id: str, tasks: list[TaskSpec]) -> dict[str, Any]:
    """The JSON content of ``spec.json`` (see :func:`spec_files`, which also gives the
    points file that goes beside it)."""
    return spec_files(run_id, tasks)[0]


# ----------------------------------------------------------------- job script


def runs_in_place(scheduler: Scheduler[Any], cluster: ClusterConfig) -> bool:
    """The one rule for where a bundle runs: where it was rendered, when the scheduler
    stages in place and the cluster is this machine; else in a copy on the cluster."""
    return scheduler.capabilities.stage_in_place and cluster.host is None


def _interpreter(scheduler: Scheduler[Any], cluster: ClusterConfig,
                 cluster_name: str | None) -> str:
    if cluster.python:
        return cluster.python
    if runs_in_place(scheduler, cluster):
        return sys.executable
    where = f"clusters.{cluster_name}.python" if cluster_name else "clusters.<name>.python"
    raise ConfigError(
        "required with container.runtime none: the interpreter on the cluster, with "
        "tritonclient installed, as an absolute path (hpctriton never relies on PATH)",
        field=where,
    )


def _container_values(config: Config, scheduler: Scheduler[Any], cluster: ClusterConfig,
                      cluster_name: str | None, load_ranks: int) -> dict[str, Any]:
    """The container step, as argument lists the job template joins and quotes.

    With ``load_ranks`` > 1 every task of the load runs the container itself (tasks may
    land on other nodes, where an instance started by the job script does not exist),
    so ``container.instance`` is not used.
    """
    c = config.container
    probe_args: list[quoting.Arg] = [
        Raw('"$HPCTRITON_BUNDLE/probe.pyz"'),
        "--spec", Raw('"$HPCTRITON_BUNDLE/spec.json"'),
        "--out", Raw('"$HPCTRITON_BUNDLE/results"'),
        "--task", Raw('"$hpctriton_task"'),
    ]
    where = f"clusters.{cluster_name}" if cluster_name else "clusters.<name>"
    if c.runtime == "none":
        python = _interpreter(scheduler, cluster, cluster_name)
        return {
            "probe_argv": [python, *probe_args],
            "check_bin": python,
            "check_bin_what": "interpreter",
            "check_bin_hint": f"set {where}.python to an interpreter with tritonclient",
            "instance_start_argv": [], "instance_stop_argv": [],
        }
    if not c.image:
        raise ConfigError(
            f"required with runtime {c.runtime} (or set container.runtime: none)",
            field="container.image",
        )
    binary = cluster.container_bin or c.runtime
    flags: list[quoting.Arg] = list(c.options)
    if c.nv:
        flags.append("--nv")
    for bind in c.binds:
        flags += ["--bind", bind]
    if c.bind_bundle:
        flags += ["--bind", Raw(BUNDLE_PY)]
    values: dict[str, Any] = {
        "check_bin": binary,
        "check_bin_what": "container runtime",
        "check_bin_hint": f"set {where}.container_bin to its absolute path, or add a "
                          "prologue line such as 'module load apptainer'",
        "instance_start_argv": [], "instance_stop_argv": [],
    }
    instance = Raw('"$hpctriton_instance"')
    if c.instance and load_ranks <= 1:
        values["instance_start_argv"] = [binary, "instance", "start", *flags, c.image, instance]
        values["instance_stop_argv"] = [binary, "instance", "stop", instance]
        values["probe_argv"] = [binary, "exec", Raw('"instance://$hpctriton_instance"'),
                                c.python, *probe_args]
    else:
        values["probe_argv"] = [binary, "exec", *flags, c.image, c.python, *probe_args]
    return values


def render_job_script(config: Config, scheduler: Scheduler[Any], ctx: RenderContext,
                      cluster: ClusterConfig) -> str:
    """The text of ``job.sh``: the scheduler's template over the generic one."""
    values = {
        "run_id": ctx.run_id,
        "how_to_run": scheduler.how_to_run(ctx),
        "prologue": [quoting.one_line(line, "prologue") for line in cluster.prologue],
        "env": [(quoting.env_name(k), v) for k, v in cluster.env.items()],
        "load_ranks": ctx.load_ranks,
        **_container_values(config, scheduler, cluster, ctx.cluster_name, ctx.load_ranks),
        **scheduler.job_values(ctx),
    }
    return templating.render(scheduler.job_template, **values)


def _bash_syntax_check(path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        return
    proc = subprocess.run([bash, "-n", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:  # a bug in hpctriton, never the user's fault
        raise RenderError(f"rendered {path.name} is not valid bash: {proc.stderr.strip()}")


# ---------------------------------------------------------------------- bundle


def _check_output(out: Path, config_dir: Path, force: bool) -> None:
    """Refuse outputs whose replacement would destroy something that is not a bundle."""
    target = out.resolve()
    for keep, what in ((Path.cwd().resolve(), "the current folder"),
                       (config_dir.resolve(), "the config file's folder")):
        if target == keep or target in keep.parents:
            raise ConfigError(f"{out} is {what} or a folder above it: give a new folder "
                              "for the bundle", field="-o")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder", field="-o")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ConfigError(f"{out} is not empty (use --force to replace it)", field="-o")
        if not ((out / "job.sh").is_file() and (out / "spec.json").is_file()):
            raise ConfigError(f"{out} does not hold a bundle (no job.sh and spec.json): "
                              "refusing to replace it even with --force", field="-o")


def render_bundle(
    config: Config,
    out_dir: str | Path,
    *,
    cluster: str | None = None,
    backend: str | None = None,
    run_id: str | None = None,
    force: bool = False,
) -> Bundle:
    """Write a complete bundle to ``out_dir`` (created; must be empty unless ``force``).
    A config error names the file and line of the field it is about.

    Example::

        bundle = render_bundle(cfg, "bundle/", cluster="asgc-slurm")
        # then on the cluster: cd bundle && sbatch job.sh
    """
    try:
        return _render_bundle(config, out_dir, cluster=cluster, backend=backend,
                              run_id=run_id, force=force)
    except ConfigError as exc:
        raise config.locate(exc) from None


def _render_bundle(config: Config, out_dir: str | Path, *, cluster: str | None,
                   backend: str | None, run_id: str | None, force: bool) -> Bundle:
    cluster_name, cluster_cfg = config.target(cluster, backend)
    scheduler = get_scheduler(cluster_cfg.backend)
    run_id = check_run_id(run_id or make_run_id(config.name or cluster_name
                                                or cluster_cfg.backend))
    out = Path(out_dir)
    _check_output(out, config.base_dir, force)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        stager = _FileStager(config.base_dir, staging)
        tasks = task_specs(config, stager)
        ctx = RenderContext(
            cluster_name=cluster_name, cluster=cluster_cfg, run_id=run_id, n_tasks=len(tasks),
            load_ranks=load_tasks(config) if scheduler.capabilities.multi_task_load else 1,
        )
        script = render_job_script(config, scheduler, ctx, cluster_cfg)
        (staging / "job.sh").write_text(script, encoding="utf-8")
        _bash_syntax_check(staging / "job.sh")
        spec, points = spec_files(run_id, tasks)
        (staging / "spec.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        if points is not None:
            # ASCII only (json.dumps escapes the rest), so bytes and characters agree
            (staging / POINTS_FILE).write_text(points, encoding="ascii")
        (staging / "probe.pyz").write_bytes(probe_zipapp())
        for name, text in scheduler.extra_files(ctx).items():
            (staging / name).write_text(text, encoding="utf-8")
            if name.endswith(".sh"):
                _bash_syntax_check(staging / name)
        (staging / "results").mkdir()
        make_private(staging)
        for warning in header_warnings(config):
            log.warning("%s", warning)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Bundle(
        path=out, run_id=run_id, backend=cluster_cfg.backend, cluster=cluster_name,
        n_tasks=len(tasks), points=[t.point for t in tasks],
    )

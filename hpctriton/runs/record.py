"""Run records: ``<runs_dir>/<run-id>/{run.json, config.yaml, bundle/, results/}``.

A run record holds everything a later command needs — from a new process or a new
day — to reconnect, ask about, cancel and collect a run: the cluster settings as
submitted (``config.yaml``), the remote folder, and the scheduler's job ids.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from hpctriton.config import ClusterConfig, Config, config_from_data
from hpctriton.errors import ConfigError, RunNotFound
from hpctriton.schedulers import JobRef, names

log = logging.getLogger("hpctriton.runs.record")
RUN_SCHEMA_VERSION = 1
DEFAULT_RUNS_DIR = "hpctriton-runs"


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` by temp file + rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class RunRecord:
    """``run.json``: what was submitted where."""

    run_id: str
    backend: str
    cluster: str | None
    host: str
    remote_dir: str
    n_tasks: int
    points: list[dict[str, Any]]
    created_at: str = field(default_factory=now_iso)
    submitted_at: str | None = None
    jobs: list[JobRef] = field(default_factory=list)
    #: Resubmissions and cancellations, oldest first.
    events: list[dict[str, Any]] = field(default_factory=list)
    schema_version: int = RUN_SCHEMA_VERSION
    #: Local folder of this record (not stored).
    path: Path = field(default=Path("."), compare=False)
    _config: Config | None = field(default=None, compare=False, repr=False)

    # ----------------------------------------------------------- files

    @property
    def results_dir(self) -> Path:
        return self.path / "results"

    @property
    def bundle_dir(self) -> Path:
        return self.path / "bundle"

    def config(self) -> Config:
        """The config as submitted (``config.yaml`` of the record)."""
        if self._config is None:
            data = yaml.safe_load((self.path / "config.yaml").read_text(encoding="utf-8"))
            base = data.pop("_base_dir", str(self.path))
            self._config = config_from_data(_own_options_only(data), base_dir=base)
        return self._config

    def cluster_config(self) -> ClusterConfig:
        """The cluster settings the run was submitted with, under its scheduler."""
        config = self.config()
        if self.cluster and self.cluster in config.clusters:
            return config.clusters[self.cluster].for_backend(self.backend)
        return ClusterConfig.of(self.backend)

    def save(self) -> None:
        """Write ``run.json`` atomically."""
        data = {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("path", "_config")}
        data["jobs"] = [asdict(job) for job in self.jobs]
        atomic_write(self.path / "run.json", json.dumps(data, indent=2) + "\n")

    def add_event(self, kind: str, **details: Any) -> None:
        self.events.append({"at": now_iso(), "event": kind, **details})

    def job_for_task(self, task: int) -> JobRef | None:
        """The newest submission covering ``task`` (resubmissions come later)."""
        for job in reversed(self.jobs):
            if task in job.tasks:
                return job
        return None

    @classmethod
    def load(cls, folder: Path) -> RunRecord:
        path = folder / "run.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunNotFound(f"{folder} holds no run record (run.json)") from None
        except (OSError, ValueError) as exc:
            raise RunNotFound(f"cannot read {path}: {exc}") from None
        try:
            data["jobs"] = [JobRef(**j) for j in data.get("jobs", [])]
            record = cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
        except (TypeError, AttributeError) as exc:
            raise RunNotFound(f"{path} is not a valid run record: {exc}") from None
        record.path = folder
        return record


def _own_options_only(data: dict[str, Any]) -> dict[str, Any]:
    """``config.yaml`` of a record written before schedulers were plugins holds every
    scheduler's options under each cluster; a cluster now takes only its own."""
    clusters = data.get("clusters")
    for cluster in clusters.values() if isinstance(clusters, dict) else ():
        if isinstance(cluster, dict):
            for name in names():
                if name != cluster.get("backend"):
                    cluster.pop(name, None)
    return data


def save_config(record: RunRecord, config: Config) -> None:
    """Keep the config as submitted beside the record (later commands use it)."""
    data = config.to_data()
    data["_base_dir"] = str(config.base_dir)
    atomic_write(record.path / "config.yaml", yaml.safe_dump(data, sort_keys=False))


# -------------------------------------------------------------------- lookup


def runs_root(runs_dir: str | Path | None = None, config: Config | None = None) -> Path:
    """Where run records live: explicit, else the config's ``runs_dir``, else
    ``$HPCTRITON_RUNS_DIR``, else ``./hpctriton-runs``."""
    if runs_dir is not None:
        return Path(runs_dir).expanduser()
    if config is not None:
        return config.runs_path()
    return Path(os.environ.get("HPCTRITON_RUNS_DIR", DEFAULT_RUNS_DIR)).expanduser()


def runs_dir_of(config_path: str | Path) -> Path:
    """A config file's ``runs_dir``, read without validating the rest of the file."""
    from hpctriton.config import yamlsrc

    path = Path(config_path)
    data = yamlsrc.load(path).data
    value = data.get("runs_dir", DEFAULT_RUNS_DIR) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise ConfigError("runs_dir must be a folder name", source=str(path), field="runs_dir")
    folder = Path(value).expanduser()
    return folder if folder.is_absolute() else path.resolve().parent / folder


def list_runs(root: Path) -> list[RunRecord]:
    """Every run under ``root``, newest first.

    Example::

        >>> [r.run_id for r in list_runs(Path("hpctriton-runs"))][:1]
        ['20261121-224033-asgc-slurm-1a2b']
    """
    if not root.is_dir():
        return []
    records = []
    for folder in root.iterdir():
        if (folder / "run.json").is_file():
            try:
                records.append(RunRecord.load(folder))
            except RunNotFound as exc:
                log.warning("skipping %s", exc)
    return sorted(records, key=lambda r: (r.created_at, r.run_id), reverse=True)


def find_run(root: Path, ref: str | None = None) -> RunRecord:
    """A run by id, unique id prefix, or folder path; the newest when ``ref`` is None."""
    if ref is not None and (Path(ref) / "run.json").is_file():
        return RunRecord.load(Path(ref))
    runs = list_runs(root)
    if not runs:
        raise RunNotFound(f"no runs in {root} (submit one, or point --runs-dir / -c at "
                          "the config whose runs_dir holds them)")
    if ref is None:
        return runs[0]
    exact = [r for r in runs if r.run_id == ref]
    if exact:
        return exact[0]
    matches = [r for r in runs if r.run_id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RunNotFound(f"{ref!r} matches several runs: "
                          + ", ".join(r.run_id for r in matches[:5]))
    raise RunNotFound(f"no run {ref!r} in {root}; `hpctriton runs` lists them")

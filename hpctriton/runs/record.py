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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hpctriton.config import ClusterConfig, Config, config_from_data
from hpctriton.errors import ConfigError, RunNotFound
from hpctriton.schedulers import JobRef, names

log = logging.getLogger("hpctriton.runs.record")
T = TypeVar("T")
RUN_SCHEMA_VERSION = 1
DEFAULT_RUNS_DIR = "hpctriton-runs"
#: The most tasks a run record may have (10,000-point sweeps fit many times over); a
#: damaged ``n_tasks`` must not make every command loop for minutes.
MAX_TASKS = 100_000
#: Modes of a run folder and of the records in it (they copy the config).
RECORD_DIR_MODE = 0o700
RECORD_FILE_MODE = 0o600


class DamagedRecord(RunNotFound):
    """A run record that cannot be used as it is: names the file and the field."""


class _Job(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    job_id: str = Field(min_length=1)
    tasks: list[Annotated[int, Field(ge=0, lt=MAX_TASKS)]]
    offset: int = 0
    extra: dict[str, Any] = Field(default_factory=dict)


class _RunJson(BaseModel):
    """``run.json`` as it must be: checked on load, so a damaged record gives one clear
    message (file and field) rather than a traceback or a loop over a huge ``n_tasks``."""

    model_config = ConfigDict(extra="ignore", strict=True)

    run_id: str = Field(min_length=1)
    backend: str = Field(min_length=1)
    cluster: str | None = None
    host: str
    remote_dir: str
    n_tasks: int = Field(ge=1, le=MAX_TASKS)
    points: list[dict[str, Any]]
    created_at: str
    submitted_at: str | None = None
    jobs: list[_Job] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    schema_version: int = RUN_SCHEMA_VERSION

    @model_validator(mode="after")
    def _consistent(self) -> _RunJson:
        if len(self.points) != self.n_tasks:
            raise ValueError(f"points has {len(self.points)} entries for {self.n_tasks} "
                             "task(s) (n_tasks)")
        for i, job in enumerate(self.jobs):
            outside = [t for t in job.tasks if t >= self.n_tasks]
            if outside:
                raise ValueError(f"jobs.{i}.tasks names task {outside[0]}, but the run has "
                                 f"tasks 0..{self.n_tasks - 1}")
        return self


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    more = len(exc.errors()) - 1
    return (f"{where}: {message}" if where else message) + (
        f" (and {more} more problem{'s' if more > 1 else ''})" if more else "")


def atomic_write(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` by temp file + rename: readers never see half a file.

    The file gets ``mode`` (0600 by default: run records copy the config, which may hold
    header values and ``env``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
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
        """The config as submitted (``config.yaml`` of the record).

        A missing or damaged file raises :class:`DamagedRecord` naming it."""
        if self._config is None:
            path = self.path / "config.yaml"
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise DamagedRecord(f"{path} is missing: the run record is incomplete") from None
            except (OSError, ValueError, yaml.YAMLError) as exc:
                raise DamagedRecord(f"{path} cannot be read: {str(exc).splitlines()[0]}"
                                    ) from None
            if not isinstance(data, dict):
                raise DamagedRecord(f"{path} is damaged: not a mapping of config fields")
            base = data.pop("_base_dir", str(self.path))
            try:
                self._config = config_from_data(_own_options_only(data),
                                                base_dir=base if isinstance(base, str)
                                                else str(self.path))
            except ConfigError as exc:
                raise DamagedRecord(f"{path} is damaged: {exc}") from None
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
        make_run_folder(self.path)
        atomic_write(self.path / "run.json", json.dumps(data, indent=2) + "\n",
                     mode=RECORD_FILE_MODE)

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
        """Read and check ``run.json`` (:class:`DamagedRecord`, exit 2, names the file
        and the field when it cannot be used)."""
        path = folder / "run.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunNotFound(f"{folder} holds no run record (run.json)") from None
        except (OSError, ValueError) as exc:
            raise DamagedRecord(f"{path} cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise DamagedRecord(f"{path} is damaged: not a JSON object")
        try:
            checked = _RunJson.model_validate(data)
        except ValidationError as exc:
            raise DamagedRecord(f"{path} is damaged: {_first_error(exc)}") from None
        values = checked.model_dump()
        values["jobs"] = [JobRef(**j) for j in values["jobs"]]
        record = cls(**{k: v for k, v in values.items() if k in cls.__dataclass_fields__})
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
    make_run_folder(record.path)
    atomic_write(record.path / "config.yaml", yaml.safe_dump(data, sort_keys=False),
                 mode=RECORD_FILE_MODE)


def make_run_folder(folder: Path) -> None:
    """Create a run folder private to its owner (0700): its records copy the config."""
    if not folder.is_dir():
        folder.mkdir(mode=RECORD_DIR_MODE, parents=True)
    if folder.stat().st_mode & 0o777 != RECORD_DIR_MODE:
        folder.chmod(RECORD_DIR_MODE)


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
    if ref is not None and ref not in (".", "..") and "/" not in ref \
            and (root / ref / "run.json").is_file():
        return RunRecord.load(root / ref)  # by its id: a damaged record says what is wrong
    runs = list_runs(root)
    if not runs:
        raise RunNotFound(f"no runs in {root} (submit one, or point --runs-dir / -c at "
                          "the config whose runs_dir holds them)")
    if ref is None:
        return runs[0]
    return by_name(ref, runs, lambda r: r.run_id, "runs",
                   f"no run {ref!r} in {root}; `hpctriton runs` lists them")


def by_name(ref: str, items: Sequence[T], name: Callable[[T], str], what: str,
            missing: str) -> T:
    """The item called ``ref``, else the one item whose name starts with it: how a run
    or a schedule is named on the command line. Several or none raise
    :class:`RunNotFound` (``missing`` is the message for none)."""
    exact = [item for item in items if name(item) == ref]
    if exact:
        return exact[0]
    matches = [item for item in items if name(item).startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise RunNotFound(f"{ref!r} matches several {what}: "
                          + ", ".join(name(m) for m in matches[:5]))
    raise RunNotFound(missing)

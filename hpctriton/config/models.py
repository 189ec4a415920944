"""The config file: typed models, loading, overrides, sweeps and error messages.

The server, probe settings and check options are the probe's own dataclasses
(``hpctriton_probe.spec``), validated here by pydantic: the YAML, the JSON Schema and
the job's ``spec.json`` are one definition. Everything else (container, clusters,
scheduler options) exists only on this side.

Example::

    >>> from hpctriton import load_config
    >>> cfg = load_config("examples/local.yaml", overrides=["server.http_port=8000"])
    >>> cfg.models
    ['simple']
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import PydanticCustomError

from hpctriton.config import overrides as ov
from hpctriton.config import yamlsrc
from hpctriton.errors import ConfigError, RenderError
from hpctriton.schedulers import registry as backends
from hpctriton.shell import quoting
from hpctriton_probe.spec import (
    CHECK_OPTIONS,
    DEFAULT_CHECKS,
    ProbeSettings,
    ServerSpec,
)

DEFAULT_CONFIG = "hpctriton.yaml"
#: Top-level keys a sweep may vary: what differs between tasks of one job.
SWEEPABLE = ("server", "models", "checks", "probe")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


# ------------------------------------------------------------------------- checks


@dataclasses.dataclass(frozen=True)
class CheckItem:
    """One entry of ``checks``: a check name and its validated options."""

    name: str
    options: Any

    def to_yaml(self) -> Any:
        """The config-file form: a bare name when every option has its default."""
        opts = dataclasses.asdict(self.options)
        default = dataclasses.asdict(CHECK_OPTIONS[self.name]())
        changed = {k: v for k, v in opts.items() if default.get(k) != v}
        return {self.name: changed} if changed else self.name


_OPTION_ADAPTERS = {name: TypeAdapter(cls) for name, cls in CHECK_OPTIONS.items()}


def _inline_refs(schema: Any, defs: dict[str, Any] | None = None) -> Any:
    """Replace ``$ref``s by their definitions: an options schema is embedded in the
    config's schema, where its own ``$defs`` would not resolve (options never recurse)."""
    if defs is None and isinstance(schema, dict):
        defs = schema.get("$defs", {})
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/") and defs is not None:
            return _inline_refs(defs[ref.rsplit("/", 1)[-1]], defs)
        return {k: _inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [_inline_refs(v, defs) for v in schema]
    return schema


def _checks_json_schema() -> dict[str, Any]:
    alternatives: list[dict[str, Any]] = [{"type": "string", "enum": list(CHECK_OPTIONS)}]
    for name, adapter in _OPTION_ADAPTERS.items():
        options = _inline_refs(adapter.json_schema())
        alternatives.append({
            "type": "object",
            "properties": {name: {"anyOf": [options, {"type": "null"}]}},
            "required": [name],
            "additionalProperties": False,
        })
    return {"type": "array", "items": {"anyOf": alternatives}}


def _one_check(entry: Any, index: int) -> CheckItem:
    if isinstance(entry, CheckItem):
        return entry
    raw: Any
    if isinstance(entry, str):
        name, raw = entry, {}
    elif isinstance(entry, Mapping) and len(entry) == 1:
        name, raw = next(iter(entry.items()))
        raw = {} if raw is None else raw
    else:
        raise PydanticCustomError(
            "nested", "{msg}",
            {"msg": "a check is a name or a one-key map {name: {options}}", "subloc": [index]},
        )
    if name not in CHECK_OPTIONS:
        raise PydanticCustomError(
            "nested", "{msg}",
            {"msg": f"unknown check {name!r}; valid checks: {', '.join(CHECK_OPTIONS)}",
             "subloc": [index]},
        )
    try:
        options = _OPTION_ADAPTERS[name].validate_python(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PydanticCustomError(
            "nested", "{msg}",
            {"msg": _plain_message(err, CHECK_OPTIONS[name]),
             "subloc": [index, name, *err["loc"]]},
        ) from None
    return CheckItem(name, options)


ChecksField = Annotated[list[Any], WithJsonSchema(_checks_json_schema())]


# ---------------------------------------------------------------------- container


class ContainerConfig(_Strict):
    """How the job starts the tritonclient image (or a plain interpreter)."""

    runtime: Literal["singularity", "apptainer", "none"] = "singularity"
    image: str | None = None
    #: Seed style: ``instance start``, ``exec instance://``, ``instance stop`` on exit.
    instance: bool = False
    #: ``SRC`` or ``SRC:DST`` or ``SRC:DST:OPTS``, as ``--bind`` takes them.
    binds: list[str] = Field(default_factory=list)
    #: The interpreter inside the image.
    python: str = "python3"
    #: Pass ``--nv`` (GPU libraries); the client does not need a GPU.
    nv: bool = False
    #: Bind the bundle folder into the container (it is usually on a shared file system
    #: that the image does not mount by default).
    bind_bundle: bool = True
    #: Extra flags for ``exec`` / ``instance start``, one argument per item.
    options: list[str] = Field(default_factory=list)

    @field_validator("binds")
    @classmethod
    def _bind_specs(cls, value: list[str]) -> list[str]:
        for bind in value:
            parts = bind.split(":")
            if "," in bind or len(parts) > 3 or not parts[0] or any(not p for p in parts[:2]):
                raise ValueError(
                    f"bind {bind!r} must be SRC, SRC:DST or SRC:DST:OPTS; singularity reads "
                    "',' as a list separator and ':' as the field separator, so paths with "
                    "either cannot be bound")
        return value


# ----------------------------------------------------------------------- clusters


class SlurmOptions(_Strict):
    """``#SBATCH`` directives; ``extra`` takes any other ``--option=value``."""

    job_name: str | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    #: ``"MM"``, ``"HH:MM:SS"``, ``"D-HH:MM:SS"`` as sbatch takes it, or seconds.
    time: str | int | None = "00:10:00"
    nodes: int | None = None
    ntasks: int | None = None
    cpus_per_task: int | None = 1
    mem: str | None = None
    gres: str | None = None
    #: Extra sbatch options, e.g. ``["--constraint=cpu", "--exclusive"]``.
    extra: list[str] = Field(default_factory=list)
    #: Cap on tasks running at once in an array (the ``%N`` suffix).
    array_parallelism: int | None = Field(default=None, ge=1)
    #: Override the cluster's ``MaxArraySize`` (else asked from ``scontrol show config``).
    max_array_size: int | None = Field(default=None, ge=1)

    @field_validator("time")
    @classmethod
    def _time_format(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str) and not re.fullmatch(
            r"(\d+-)?\d+(:\d{1,2}){0,2}|UNLIMITED|INFINITE", value
        ):
            raise ValueError(f"time {value!r} is not a Slurm time (MM, HH:MM:SS, D-HH:MM:SS)")
        return value

    @field_validator("extra")
    @classmethod
    def _extra_are_options(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.startswith("-"):
                raise ValueError(f"extra item {item!r} must be an sbatch option like --qos=low")
        return value


class DicosOptions(_Strict):
    """``dicos job submit`` options."""

    #: ``-j``: copies of the job (without a sweep).
    jobs: int = Field(default=1, ge=1)
    require_cores: int | None = Field(default=None, ge=1)
    #: MB.
    require_ram: int | None = Field(default=None, ge=1)
    #: Job name; made DiCOS-safe (at most 25 characters, no spaces).
    name: str | None = None


class LocalOptions(_Strict):
    """The local backend: tasks run as background processes on the target host."""

    #: Tasks running at once.
    parallel: int = Field(default=1, ge=1)


class ClusterConfig(_Strict):
    """Where jobs go: a backend and, for remote ones, how to reach the login node."""

    backend: str
    #: SSH host or ``~/.ssh/config`` alias; absent = this machine.
    host: str | None = None
    user: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)
    key: str | None = None
    known_hosts: str | None = None
    #: ``verify`` (default) refuses unknown host keys; ``accept-new`` records them.
    host_key_policy: Literal["verify", "accept-new"] = "verify"
    connect_timeout_s: float = Field(default=15.0, gt=0)
    #: Remote folder for bundles and results; relative = under the remote home.
    workdir: str = "hpctriton-runs"
    #: Interpreter for ``runtime: none`` (default: this Python for a local cluster).
    python: str | None = None
    #: Container binary (default: the runtime's name), or an absolute path.
    container_bin: str | None = None
    #: Shell lines run first in the job (``module load apptainer``): shell code by design.
    prologue: list[str] = Field(default_factory=list)
    #: Exported in the job; values are literal (quoted).
    env: dict[str, str] = Field(default_factory=dict)
    #: Exported before every command hpctriton runs on the login node (sbatch, dicos…),
    #: e.g. ``SLURM_CONF``; values are literal (quoted).
    remote_env: dict[str, str] = Field(default_factory=dict)
    slurm: SlurmOptions = Field(default_factory=SlurmOptions)
    dicos: DicosOptions = Field(default_factory=DicosOptions)
    local: LocalOptions = Field(default_factory=LocalOptions)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in backends.names():
            raise ValueError(
                f"unknown backend {value!r}; valid backends: {', '.join(backends.names())}")
        return value

    @field_validator("prologue")
    @classmethod
    def _one_line_each(cls, value: list[str]) -> list[str]:
        try:
            return [quoting.one_line(item, "each prologue item is one shell line")
                    for item in value]
        except RenderError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("env", "remote_env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        try:
            for name in value:
                quoting.env_name(name)
        except RenderError as exc:
            raise ValueError(str(exc)) from None
        return value


# ------------------------------------------------------------------------- config


class Config(_Strict):
    """One hpctriton config file.

    Build one in code as ``Config(server={"host": "h", "http_port": 8000}, models=["simple"])``
    or read it with :func:`load_config`.
    """

    #: Run name prefix (default: the cluster's name).
    name: str | None = None
    server: ServerSpec
    models: list[str] = Field(min_length=1)
    checks: ChecksField = Field(default_factory=lambda: list(DEFAULT_CHECKS))
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    container: ContainerConfig = Field(default_factory=ContainerConfig)
    sweep: dict[str, list[Any]] = Field(default_factory=dict)
    clusters: dict[str, ClusterConfig] = Field(default_factory=dict)
    #: The cluster used when ``--cluster`` is not given and there is more than one.
    default_cluster: str | None = None
    #: Local folder of run records; relative to the config file's folder.
    runs_dir: str = "hpctriton-runs"
    #: Folder relative paths are resolved against (the config file's); not in the file.
    base_dir: Path = Field(default=Path("."), exclude=True, json_schema_extra={"readOnly": True})

    @field_validator("container", mode="before")
    @classmethod
    def _container_default(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("models")
    @classmethod
    def _model_names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not name or name.strip() != name or "/" in name:
                raise ValueError(f"model name {name!r} is not a valid Triton model name")
        return value

    @field_validator("checks", mode="before")
    @classmethod
    def _normalize_checks(cls, value: Any) -> list[CheckItem]:
        if not isinstance(value, list) or not value:
            raise ValueError("checks must be a non-empty list of check names or one-key maps")
        items = [_one_check(entry, i) for i, entry in enumerate(value)]
        names = [c.name for c in items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"check(s) listed twice: {', '.join(dupes)}")
        return items

    @field_validator("sweep")
    @classmethod
    def _sweep_keys(cls, value: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in value.items():
            top = key.split(".")[0]
            if top not in SWEEPABLE:
                raise PydanticCustomError(
                    "nested", "{msg}",
                    {"msg": "only server.*, models, checks and probe.* can vary per task "
                            "(container and cluster are the same for every task of a job)",
                     "subloc": [key]},
                )
            if not values:
                raise PydanticCustomError(
                    "nested", "{msg}", {"msg": "needs at least one value", "subloc": [key]})
        return value

    @model_validator(mode="after")
    def _default_cluster_exists(self) -> Config:
        if self.default_cluster and self.default_cluster not in self.clusters:
            raise ValueError(
                f"default_cluster {self.default_cluster!r} is not among clusters: "
                f"{', '.join(self.clusters) or 'none'}"
            )
        return self

    # ------------------------------------------------------------------ helpers

    @property
    def check_names(self) -> list[str]:
        return [c.name for c in self.checks]

    def cluster(self, name: str | None = None) -> tuple[str, ClusterConfig]:
        """The named cluster, or the only / default one; a clear error otherwise."""
        if name is None:
            name = self.default_cluster
        if name is None:
            if len(self.clusters) == 1:
                name = next(iter(self.clusters))
            elif not self.clusters:
                raise ConfigError("no clusters in the config: add one under clusters:",
                                  field="clusters")
            else:
                raise ConfigError(
                    f"several clusters ({', '.join(self.clusters)}): choose one with "
                    "--cluster or set default_cluster", field="clusters")
        if name not in self.clusters:
            raise ConfigError(
                f"unknown cluster {name!r}; clusters in the config: "
                f"{', '.join(self.clusters) or 'none'}", field="clusters")
        return name, self.clusters[name]

    def runs_path(self) -> Path:
        path = Path(self.runs_dir).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    def to_data(self) -> dict[str, Any]:
        """Plain data that validates back to an equal config (for ``config.yaml``)."""
        data = self.model_dump(mode="json", exclude={"base_dir"})
        data["checks"] = [c.to_yaml() for c in self.checks]
        return data

    def points(self) -> list[tuple[dict[str, Any], Config]]:
        """Each sweep point with the config it gives (one empty point without a sweep)."""
        base = self.to_data()
        base.pop("sweep", None)
        result = []
        for point in ov.sweep_points(self.sweep):
            data = ov.apply_all(base, point.items())
            result.append((point, _validate(data, None, self.base_dir, sweep_point=point)))
        return result


# ------------------------------------------------------------------------ loading


def _plain_message(err: Mapping[str, Any], model: Any = None) -> str:
    """A user-facing message for one pydantic error."""
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        valid = _valid_keys_at(model, err.get("loc", ())[:-1]) if model is not None else None
        msg = "unknown key"
        if valid:
            msg += f"; valid keys: {', '.join(valid)}"
    elif kind == "missing":
        msg = "required field is missing"
    elif "input" in err and kind not in ("nested", "value_error"):
        msg += f" (got {err['input']!r})"
    return msg


def _unwrap_optional(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _valid_keys_at(model: Any, loc: Sequence[Any]) -> list[str] | None:
    """The field names of the model reached by following ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        origin, args = typing.get_origin(current), typing.get_args(current)
        if origin is dict and args:
            current = args[1]  # part is a key of the mapping (a cluster name, say)
        elif origin is list and args:
            current = args[0]
        else:
            current = _field_type(current, part)
        if current is None:
            return None
    return _field_names(_unwrap_optional(current))


def _field_type(model: Any, name: str) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel):
        info = model.model_fields.get(name)
        return info.annotation if info else None
    if dataclasses.is_dataclass(model):
        return typing.get_type_hints(model).get(name)
    return None


def _field_names(model: Any) -> list[str] | None:
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [n for n, f in model.model_fields.items() if not f.exclude]
    if dataclasses.is_dataclass(model):
        return [f.name for f in dataclasses.fields(model)]
    return None


def _error_path(err: Mapping[str, Any]) -> tuple[Any, ...]:
    loc = tuple(p for p in err.get("loc", ()) if not str(p).startswith("function-"))
    if err.get("type") == "nested":
        loc = loc + tuple(err.get("ctx", {}).get("subloc", ()))
    return loc


def _dotted(path: Iterable[Any]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validate(
    data: Any,
    src: yamlsrc.Sourced | None,
    base_dir: Path,
    *,
    sweep_point: Mapping[str, Any] | None = None,
) -> Config:
    source = src.source if src else None
    if data is None:
        raise ConfigError("the config is empty", source=source)
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of keys to values", source=source)
    try:
        config = Config.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        errors = exc.errors()
        path = _error_path(errors[0])
        message = _plain_message(errors[0], Config)
        if sweep_point:
            message += " (in sweep point " + ", ".join(
                f"{k}={v!r}" for k, v in sweep_point.items()) + ")"
        for other in errors[1:6]:
            other_path = _error_path(other)
            other_line = src.line_of(other_path) if src else None
            at = f" (line {other_line})" if other_line else ""
            message += f"\n  also {_dotted(other_path)}{at}: {_plain_message(other, Config)}"
        if len(errors) > 6:
            message += f"\n  … and {len(errors) - 6} more"
        line = src.line_of(path) if src else None
        raise ConfigError(message, source=source, field=_dotted(path) or None, line=line) from None
    if sweep_point is None:
        config.points()  # every sweep point must validate too
    return config


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: Sequence[str] = ()) -> Config:
    """Read, override (``key=value`` strings, as ``--set`` takes them) and validate.

    Example::

        cfg = load_config("hpctriton.yaml", overrides=["server.grpc_port=30457"])
    """
    src = yamlsrc.load(path)
    data = src.data
    items = [ov.parse_set(item) for item in overrides]
    if items:
        data = ov.apply_all(data if isinstance(data, dict) else {}, items)
    return _validate(data, src, Path(path).resolve().parent)


def config_from_data(
    data: Mapping[str, Any], base_dir: str | Path = ".", overrides: Sequence[str] = ()
) -> Config:
    """Validate a config given as plain data (a notebook, ``hpctriton check`` flags).

    Example::

        >>> cfg = config_from_data({"server": {"host": "gpu01", "grpc_port": 8001},
        ...                         "models": ["simple"], "checks": ["health"]})
        >>> cfg.check_names
        ['health']
    """
    merged = ov.apply_all(data, [ov.parse_set(item) for item in overrides])
    return _validate(merged, None, Path(base_dir).resolve())


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file (``hpctriton schema``).

    Example::

        >>> json_schema()["title"]
        'hpctriton config'
    """
    schema = Config.model_json_schema(mode="validation")
    schema.get("properties", {}).pop("base_dir", None)
    schema["title"] = "hpctriton config"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema

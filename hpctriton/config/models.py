"""The config file's models: server, checks, container, clusters, sweeps.

The server, probe settings and check options are the probe's own dataclasses
(``hpctriton_probe.spec``), validated here by pydantic: the YAML, the JSON Schema and
the job's ``spec.json`` are one definition. A cluster's scheduler options come from
the scheduler itself: the registry's schedulers make a union of cluster models,
discriminated by ``backend`` (:class:`ClusterConfig`). Reading files and the error
messages live in :mod:`hpctriton.config.loading`.

Example::

    >>> from hpctriton import config_from_data
    >>> cfg = config_from_data({"server": {"host": "gpu01", "grpc_port": 8001},
    ...                         "models": ["simple"],
    ...                         "clusters": {"a": {"backend": "slurm",
    ...                                            "slurm": {"partition": "debug"}}}})
    >>> cfg.clusters["a"].options.partition
    'debug'
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.json_schema import WithJsonSchema
from pydantic_core import CoreSchema, PydanticCustomError

from hpctriton.config import messages, yamlsrc
from hpctriton.config import overrides as ov
from hpctriton.config.headers import is_header_field_value, is_header_value
from hpctriton.errors import ConfigError, RenderError
from hpctriton.schedulers import SchedulerOptions, registry
from hpctriton.shell import quoting
from hpctriton_probe.spec import (
    CHECK_OPTIONS,
    DEFAULT_CHECKS,
    ProbeSettings,
    ServerSpec,
)

#: Top-level keys a sweep may vary: what differs between tasks of one job.
SWEEPABLE = ("server", "models", "checks", "probe")
#: Where jobs go when the config names no cluster and ``--backend`` is not given.
DEFAULT_BACKEND = "local"


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


_OPTION_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(cls) for name, cls in CHECK_OPTIONS.items()}


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
            {"msg": messages.plain_message(err, CHECK_OPTIONS[name]),
             "subloc": [index, name, *messages.error_path(err, CHECK_OPTIONS[name])]},
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


class ClusterConfig(_Strict):
    """Where jobs go: a scheduler (``backend``) and, for remote ones, how to reach the
    login node.

    In a config each cluster is validated as the model of its backend, which adds that
    scheduler's options under the key of its name (``slurm: {partition: debug}``):
    ``options`` reads them. Build one in code with :meth:`of`.
    """

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
    #: A task pending this long for a reason only an administrator can clear
    #: (``PartitionDown``…) fails and its job is cancelled; null: wait without end.
    max_pending_s: float | None = Field(default=600.0, gt=0)
    #: Cap on what one ``collect`` extracts, in MB (``collect --max-size`` raises it).
    collect_max_mb: int = Field(default=2048, ge=1)

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in registry.names():
            raise ValueError(registry.unknown_backend(value).detail)
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

    @property
    def options(self) -> SchedulerOptions:
        """The scheduler's options: the section named after the backend (its defaults
        for a cluster built without one)."""
        own = getattr(self, self.backend, None)
        if isinstance(own, SchedulerOptions):
            return own
        return self.for_backend(self.backend).options

    @classmethod
    def of(cls, backend: str, **fields: Any) -> ClusterConfig:
        """A cluster of ``backend``; its options default unless given under its name.

        Example::

            >>> ClusterConfig.of("slurm", host="login01", slurm={"partition": "gpu"}).options
            SlurmOptions(job_name=None, partition='gpu', ...)
        """
        if backend not in registry.names():
            raise registry.unknown_backend(backend)
        try:
            return _cluster_adapter().validate_python({**fields, "backend": backend})
        except ValidationError as exc:
            raise messages.config_error(exc, ClusterField) from None

    def for_backend(self, backend: str) -> ClusterConfig:
        """This cluster's connection and job settings under another scheduler, with that
        scheduler's default options (``--backend`` on a cluster of another backend)."""
        if backend == self.backend and isinstance(getattr(self, backend, None),
                                                  SchedulerOptions):
            return self
        shared = {name: getattr(self, name) for name in ClusterConfig.model_fields
                  if name != "backend"}
        return ClusterConfig.of(backend, **shared)


class _UnloadableCluster(ClusterConfig):
    """A cluster of a scheduler whose import failed: choosing it raises that error, and
    only choosing it does."""

    @model_validator(mode="before")
    @classmethod
    def _refuse(cls, data: Any) -> Any:
        backend = data.get("backend") if isinstance(data, Mapping) else None
        try:
            registry.load(str(backend))
        except ConfigError as exc:
            raise PydanticCustomError(
                "nested", "{msg}", {"msg": exc.detail, "subloc": ["backend"]}) from None
        return data


@functools.cache
def _cluster_models() -> dict[str, type[ClusterConfig]]:
    """Backend name -> its cluster model, for every registered scheduler."""
    models: dict[str, type[ClusterConfig]] = {}
    for name in registry.names():
        fields: dict[str, Any] = {"backend": (Literal[name], ...)}
        base: type[ClusterConfig] = ClusterConfig
        try:
            options = registry.load(name).options_model
            fields[name] = (options, Field(default_factory=options))
            doc = f"A cluster of the {name} scheduler: its options under ``{name}:``."
        except ConfigError as exc:
            base, doc = _UnloadableCluster, f"A cluster of the {name} scheduler: {exc.detail}"
        models[name] = create_model(f"{name.capitalize()}Cluster", __base__=base,
                                    __module__=__name__, __doc__=doc, **fields)
    return models


@dataclass(frozen=True)
class SchedulerUnion:
    """Validates a cluster as the model of its backend: the union of every registered
    scheduler's cluster model, discriminated by ``backend`` (as ``hpctriton schema``
    shows it). Implements :class:`hpctriton.config.messages.TaggedUnion`."""

    tag_key: str = "backend"

    def variant(self, tag: str) -> type[ClusterConfig] | None:
        return _cluster_models().get(tag)

    def invalid_tag(self, tag: str) -> str:
        return registry.unknown_backend(tag).detail

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        members: Any = Union[tuple(_cluster_models().values())]  # noqa: UP007 - run-time tuple
        return handler.generate_schema(Annotated[members, Field(discriminator=self.tag_key)])


#: A cluster as the config holds it: typed as the base, validated as its backend's model.
ClusterField = Annotated[ClusterConfig, SchedulerUnion()]


@functools.cache
def _cluster_adapter() -> TypeAdapter[ClusterConfig]:
    return TypeAdapter(ClusterField)


# --------------------------------------------------------------------- characters

#: Validation context key: the data's text was checked already (a sweep point's parts).
_TEXT_CHECKED = "hpctriton.text_checked"

def _shown(text: str) -> str:
    """``text`` safe to print: characters that cannot be (lone surrogates, controls) as
    ``\\uXXXX`` escapes."""
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF
                   else f"\\u{ord(c):04x}" for c in text)


def _text_problem(text: str, one_line: bool, header: bool = False) -> str | None:
    """Why ``text`` cannot be taken (None when it can): a value that cannot be encoded
    as UTF-8 (a lone surrogate), written to a script (NUL) or given to sbatch (a
    carriage return: "DOS line breaks"), a line break in a one-line value, or (with
    ``header``) a character no header value can carry. The message never shows the
    character of a header value (only which rule it breaks): the value is a secret."""
    for c in text:
        code = ord(c)
        if 0xD800 <= code <= 0xDFFF:
            return (f"holds a lone surrogate (U+{code:04X}), which is not valid Unicode text "
                    "and cannot be written to any file")
        if c == "\x00":
            return "holds a NUL character, which cannot be passed to a shell or a file name"
        if c == "\r":
            return ("holds a carriage return (CR, U+000D): sbatch refuses scripts with "
                    "DOS line breaks, and no field needs one")
        if c == "\n" and one_line:
            return "holds a line break (LF, U+000A): this value is one line"
    if header and not is_header_field_value(text):
        return ("holds a character no HTTP or gRPC header value can carry: only visible "
                "ASCII, space and tab are allowed (no letters beyond ASCII, no control "
                "characters)")
    return None


def refuse_bad_text(data: Any, path: tuple[Any, ...] = ()) -> None:
    """Refuse, naming the field (never showing a header's value), any key or value of
    raw config data that cannot safely reach a file, a script or sbatch: lone
    surrogates, NUL and CR anywhere, and in a header value anything but visible ASCII,
    space and tab (a line break, ``é``: which no header can carry, and which the client
    libraries would echo, value and all, in their errors). Other line breaks are left to
    where they go: quoted for bash, refused in an ``#SBATCH`` line (``shell.quoting``).
    Raised as a pydantic "nested" error, so the message names the file's line too."""
    if isinstance(data, str):
        header = is_header_value(path)
        problem = _text_problem(data, one_line=header, header=header)
        if problem is not None:
            raise PydanticCustomError("nested", "{msg}", {
                "msg": problem, "subloc": [_shown(p) if isinstance(p, str) else p
                                           for p in path]})
    elif isinstance(data, Mapping):
        for key, value in data.items():
            if isinstance(key, str):
                problem = _text_problem(key, one_line=True)
                if problem is not None:
                    raise PydanticCustomError("nested", "{msg}", {
                        "msg": f"this key {problem}",
                        "subloc": [_shown(p) if isinstance(p, str) else p
                                   for p in (*path, key)]})
            refuse_bad_text(value, (*path, key))
    elif isinstance(data, list | tuple):
        for index, value in enumerate(data):
            refuse_bad_text(value, (*path, index))


# ------------------------------------------------------------------------- notify


NotifyEvent = Literal["failed", "regressed", "missing"]
NOTIFY_EVENTS: tuple[NotifyEvent, ...] = ("failed", "regressed", "missing")


class NotifyConfig(_Strict):
    """``notify:``: what to run on the machine that collects when a run fails,
    regresses or does not happen (``hpctriton collect --all``; ``submit --wait``, ``wait``
    and ``collect RUN`` for a run outside a schedule; docs/monitoring.md).

    ``command`` is shell text by design (it runs here, with ``sh -c``, never on the
    cluster); it gets the event's JSON on stdin and ``HPCTRITON_RUN_ID``,
    ``HPCTRITON_CLUSTER``, ``HPCTRITON_EVENT``, ``HPCTRITON_SCHEDULE`` and
    ``HPCTRITON_REASON`` in its environment. ``url`` receives the same JSON as a POST
    (HTTPS certificates are verified)."""

    command: str | None = None
    url: str | None = None
    #: The events that notify (all three by default).
    on: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    #: Seconds the command may run, or the POST may take, before it is given up (said
    #: on stderr; the collect itself still succeeds).
    timeout_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _something_to_do(self) -> NotifyConfig:
        if not self.command and not self.url:
            raise ValueError("give a command, a url or both")
        if self.url and not self.url.startswith(("https://", "http://")):
            raise ValueError(f"url {self.url!r} must start with https:// or http://")
        return self


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
    clusters: dict[str, ClusterField] = Field(default_factory=dict)
    #: The cluster used when ``--cluster`` is not given and there is more than one.
    default_cluster: str | None = None
    #: Local folder of run records; relative to the config file's folder.
    runs_dir: str = "hpctriton-runs"
    #: Alerts for runs that fail, regress or go missing (docs/monitoring.md).
    notify: NotifyConfig | None = None
    #: Folder relative paths are resolved against (the config file's); not in the file.
    base_dir: Path = Field(default=Path("."), exclude=True, json_schema_extra={"readOnly": True})
    #: ``points()``, with what it was computed from (kept alive, compared by identity).
    _points: Any = PrivateAttr(default=None)
    #: Where the fields were written (:class:`~hpctriton.config.yamlsrc.Sourced`: the
    #: file's lines, the ``--set`` arguments); None for a config built from data.
    _source: Any = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:
        # the fields only: a cache of points() is no part of what a config says
        if not isinstance(other, Config):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    @model_validator(mode="before")
    @classmethod
    def _safe_text(cls, data: Any, info: ValidationInfo) -> Any:
        if not (info.context or {}).get(_TEXT_CHECKED):
            refuse_bad_text(data)
        return data

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

    def set_source(self, src: yamlsrc.Sourced | None) -> None:
        """Remember where the fields were written, for :meth:`locate`."""
        self._source = src

    def locate(self, exc: ConfigError, *, sweep: bool = False) -> ConfigError:
        """``exc`` (and each error it holds), raised later about a field of this config
        (the container step, a cluster; with ``sweep``, a sweep point's value, placed
        at its sweep key), with the file and line that field was written at; errors
        that name a place already, or no field of the config (``-o``), stay as they
        are."""
        src: yamlsrc.Sourced | None = self._source
        if src is None:
            return exc
        placed = [self._place(e, src, sweep) for e in (exc, *exc.also)]
        first = placed[0]
        return ConfigError(first.detail, source=first.source, field=first.field,
                           line=first.line, also=placed[1:])

    def _place(self, exc: ConfigError, src: yamlsrc.Sourced, sweep: bool) -> ConfigError:
        if exc.source is not None or not exc.field:
            return exc
        path = messages.undotted(exc.field)
        if not path or path[0] not in type(self).model_fields:
            return exc
        if sweep and self.sweep:
            # the value was written in the sweep: the key that varies this field
            key = next((k for k in self.sweep
                        if exc.field == k or exc.field.startswith((k + ".", k + "["))
                        or k.startswith(exc.field + ".")), next(iter(self.sweep)))
            path = ("sweep", key)
        source, line = src.where(path)
        return exc.located(source, line)

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
        """Each sweep point with the config it gives (one empty point without a sweep).

        Only the sections a point changes are validated again, once for each distinct
        value (a sweep of 10,000 points over ``probe.timeout_s`` validates ``probe``
        10,000 times and the server once); everything else is shared with this config.
        The result is kept until a sweepable section or the sweep is replaced.
        """
        key = tuple(getattr(self, name) for name in (*SWEEPABLE, "sweep"))
        cached = self._points
        if cached is not None and all(a is b for a, b in zip(cached[0], key, strict=True)):
            return list(cached[1])
        base = self.model_dump(mode="json", include=set(SWEEPABLE))
        base["checks"] = [c.to_yaml() for c in self.checks]
        seen: dict[tuple[str, str], Any] = {}
        result = []
        for point in ov.sweep_points(self.sweep):
            by_section: dict[str, list[tuple[str, Any]]] = {}
            for dotted_key, value in point.items():
                by_section.setdefault(dotted_key.split(".")[0], []).append((dotted_key, value))
            update: dict[str, Any] = {"sweep": {}}
            for section, items in by_section.items():
                memo = (section, json.dumps(items, sort_keys=True, default=repr))
                if memo not in seen:
                    data = {**base, **ov.apply_all({section: base[section]}, items)}
                    try:
                        # every value here was checked with the whole config (its sweep)
                        part = Config.model_validate({**data, "base_dir": self.base_dir},
                                                     context={_TEXT_CHECKED: True})
                    except ValidationError as exc:
                        raise messages.config_error(exc, Config, sweep_point=point) from None
                    seen[memo] = getattr(part, section)
                update[section] = seen[memo]
            result.append((point, self.model_copy(update=update)))
        self._points = (key, result)
        return list(result)

    def target(self, cluster: str | None = None,
               backend: str | None = None) -> tuple[str | None, ClusterConfig]:
        """The cluster a run goes to, for ``--cluster`` and ``--backend``.

        The named cluster (or the only, or the default one); with ``--backend`` alone,
        the one cluster of that backend, else an unnamed cluster on this machine. With
        ``--backend``, the cluster runs under that scheduler (its default options).

        Example::

            >>> config.target(backend="dicos")
            ('asgc-dicos', DicosCluster(backend='dicos', host='dicos-ui05…', …))
        """
        if cluster is not None or (self.clusters and backend is None):
            name, chosen = self.cluster(cluster)
        elif backend is not None:
            matching = [n for n, c in self.clusters.items() if c.backend == backend]
            if self.default_cluster in matching:
                matching = [self.default_cluster]
            if len(matching) == 1:
                name, chosen = matching[0], self.clusters[matching[0]]
            else:
                name, chosen = None, ClusterConfig.of(backend)
        else:
            name, chosen = None, ClusterConfig.of(DEFAULT_BACKEND)
        return name, chosen if backend is None else chosen.for_backend(backend)


def load_tasks(config: Config) -> int:
    """The most tasks any load check of any sweep point asks for (1 without load): how
    many probes a multi-task load starts together in one job.

    Example::

        >>> load_tasks(config_from_data({..., "checks": [{"load": {"tasks": 3}}]}))
        3
    """
    most = 1
    for _point, cfg in config.points():
        for check in cfg.checks:
            if check.name == "load":
                most = max(most, int(getattr(check.options, "tasks", 1) or 1))
    return most

"""What the probe runs: the typed form of ``spec.json``.

These dataclasses are the single definition of the server, probe settings and check
options. The probe validates ``spec.json`` against them with the small stdlib
validator below (it may import nothing but the standard library, tritonclient and
numpy); ``hpctriton.config.models`` uses the very same classes as pydantic field types, so
the YAML file, the JSON Schema and the probe can never disagree about an option.

Python 3.8 compatible: annotations use ``typing`` generics, evaluated by
``typing.get_type_hints``.
"""

import dataclasses
import json
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Union

SPEC_SCHEMA_VERSION = 1
PROTOCOLS = ("http", "grpc")

#: A DNS name, an IPv4 address or an IPv6 address (bare or in brackets).
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[?[0-9A-Fa-f:.]+(?:%\w+)?\]?")

#: Field metadata marking a value as a file path (or a mapping of names to paths):
#: ``hpctriton render`` copies such files into the bundle and rewrites the path.
FILE = {"file": True}


class SpecError(ValueError):
    """``spec.json`` (or a config value built from it) is not valid; exit code 2."""


def _forbid_extra() -> Dict[str, Any]:
    # Read by pydantic when hpctriton validates these dataclasses; plain data here.
    return {"extra": "forbid"}


def _check_port(name: str, value: Optional[int]) -> None:
    if value is not None and not (1 <= value <= 65535):
        raise SpecError(f"{name} must be between 1 and 65535, got {value}")


def _check_positive(name: str, value: Optional[float], allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise SpecError("{} must be {}, got {}".format(
            name, "zero or more" if allow_zero else "greater than zero", value))


def _check_protocols(protocols: List[str]) -> None:
    for p in protocols:
        if p not in PROTOCOLS:
            raise SpecError("protocol {!r} is not one of {}".format(p, ", ".join(PROTOCOLS)))


@dataclass
class TLSSpec:
    """TLS towards the server: HTTPS for HTTP, SSL channel credentials for gRPC.

    Paths are as seen by the probe (inside the job: relative to the bundle).
    """

    __pydantic_config__ = _forbid_extra()
    ca: Optional[str] = field(default=None, metadata=FILE)
    cert: Optional[str] = field(default=None, metadata=FILE)
    key: Optional[str] = field(default=None, metadata=FILE)
    verify: bool = True

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise SpecError("cert and key must be given together")


@dataclass
class ServerSpec:
    """The Triton server under test."""

    __pydantic_config__ = _forbid_extra()
    host: str
    http_port: Optional[int] = None
    grpc_port: Optional[int] = None
    metrics_port: Optional[int] = None
    tls: Optional[TLSSpec] = None
    #: Extra request headers. ``${VAR}`` is expanded from the job's environment at
    #: run time, so secrets never land in a file.
    headers: Dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _HOST.fullmatch(self.host or ""):
            raise SpecError(f"host must be a host name or an IP address, got {self.host!r}")
        for name in ("http_port", "grpc_port", "metrics_port"):
            _check_port(name, getattr(self, name))
        if self.http_port is None and self.grpc_port is None:
            raise SpecError("give http_port or grpc_port (or both)")

    def url(self, protocol: str) -> Optional[str]:
        """``host:port`` for ``http``, ``grpc`` or ``metrics``; None when not configured."""
        port = getattr(self, protocol + "_port")
        if port is None:
            return None
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{port}"


@dataclass
class ProbeSettings:
    """How patient the probe is. Per-check ``timeout_s`` overrides ``timeout_s``."""

    __pydantic_config__ = _forbid_extra()
    timeout_s: float = 10.0
    #: Attempts after the first for a server that refuses connections (still starting).
    retries: int = 2
    #: First wait between attempts; doubles each time.
    retry_backoff_s: float = 0.5

    def __post_init__(self) -> None:
        _check_positive("timeout_s", self.timeout_s)
        _check_positive("retries", self.retries, allow_zero=True)
        _check_positive("retry_backoff_s", self.retry_backoff_s, allow_zero=True)


@dataclass
class CheckOptions:
    """Options every check accepts."""

    __pydantic_config__ = _forbid_extra()
    #: Overrides ``probe.timeout_s`` for this check.
    timeout_s: Optional[float] = None
    protocols: List[str] = field(default_factory=lambda: list(PROTOCOLS))

    def __post_init__(self) -> None:
        _check_positive("timeout_s", self.timeout_s)
        _check_protocols(self.protocols)


@dataclass
class HealthOptions(CheckOptions):
    """Server live, server ready, each model ready."""


@dataclass
class MetadataOptions(CheckOptions):
    """Server metadata; per model, metadata and config."""


@dataclass
class KeepaliveOptions(CheckOptions):
    """gRPC channel with keepalive (tritonclient ``KeepAliveOptions``)."""

    protocols: List[str] = field(default_factory=lambda: ["grpc"])
    keepalive_time_s: float = 10.0
    keepalive_timeout_s: float = 20.0
    permit_without_calls: bool = False
    max_pings_without_data: int = 2
    #: Calls made on the one channel.
    calls: int = 3
    #: Spread the calls over this many seconds; 0 = back to back.
    period_s: float = 0.0

    def __post_init__(self) -> None:
        CheckOptions.__post_init__(self)
        if self.protocols != ["grpc"]:
            raise SpecError("keepalive is a gRPC check: protocols must be [grpc]")
        _check_positive("keepalive_time_s", self.keepalive_time_s)
        _check_positive("keepalive_timeout_s", self.keepalive_timeout_s)
        _check_positive("max_pings_without_data", self.max_pings_without_data, allow_zero=True)
        _check_positive("calls", self.calls)
        _check_positive("period_s", self.period_s, allow_zero=True)


@dataclass
class InferOptions(CheckOptions):
    """A real inference per model, outputs checked."""

    batch_size: int = 1
    #: Dimensions for inputs with dynamic (-1) dims, by input name.
    shapes: Dict[str, List[int]] = field(default_factory=dict)
    #: perf_analyzer-style input-data JSON; one file, or one per model name.
    input_data: Union[str, Dict[str, str], None] = field(default=None, metadata=FILE)
    #: Expected outputs JSON (same layout as input_data), compared value by value.
    expected_outputs: Union[str, Dict[str, str], None] = field(default=None, metadata=FILE)

    def __post_init__(self) -> None:
        CheckOptions.__post_init__(self)
        _check_positive("batch_size", self.batch_size)
        for name, dims in self.shapes.items():
            if any(d <= 0 for d in dims):
                raise SpecError(f"shapes.{name}: every dimension must be > 0, got {dims}")


@dataclass
class StatisticsOptions(CheckOptions):
    """Triton's statistics API per model, before and after the other checks."""


@dataclass
class MetricsOptions(CheckOptions):
    """Prometheus endpoint: ``nv_inference_*`` per model and the batching ratio."""

    protocols: List[str] = field(default_factory=lambda: ["http"])
    path: str = "/metrics"


@dataclass
class StabilityOptions:
    """perf_analyzer's stability rule: the last ``windows`` measurement windows all lie
    within ``percent`` % of their average, for throughput and for average latency;
    at most ``max_trials`` windows per point (a point that never settles is reported
    as not stable)."""

    __pydantic_config__ = _forbid_extra()
    windows: int = 3
    percent: float = 10.0
    max_trials: int = 10

    def __post_init__(self) -> None:
        _check_positive("stability.windows", self.windows)
        _check_positive("stability.percent", self.percent)
        _check_positive("stability.max_trials", self.max_trials)
        if self.max_trials < self.windows:
            raise SpecError(f"stability.max_trials ({self.max_trials}) must be at least "
                            f"stability.windows ({self.windows})")


LOAD_SCHEDULES = ("constant", "poisson")


def parse_range(text: str, what: str, integer: bool) -> List[Any]:
    """perf_analyzer's ``start:end:step`` (end included; step defaults to 1; ``"4"``
    alone is one value) as a list of numbers."""
    parts = [p.strip() for p in text.split(":")]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise SpecError(f"{what}: expected START:END:STEP (like \"1:16:2\"), got {text!r}")
    try:
        nums = [int(p) if integer else float(p) for p in parts]
    except ValueError:
        raise SpecError("{}: {!r} is not a range of {}".format(
            what, text, "integers" if integer else "numbers")) from None
    start = nums[0]
    end = nums[1] if len(nums) > 1 else start
    step = nums[2] if len(nums) > 2 else 1
    if start <= 0 or step <= 0 or end < start:
        raise SpecError(f"{what}: {text!r} needs 0 < START <= END and STEP > 0")
    out = []
    i = 0
    while True:
        value = start + i * step
        if value > end + (0 if integer else 1e-9 * end):
            break
        out.append(value if integer else round(value, 9))
        i += 1
        if i > 10000:
            raise SpecError(f"{what}: {text!r} gives more than 10000 points")
    return out


@dataclass
class LoadOptions:
    """Load test: a concurrency sweep (closed loop) or request rates (open loop).

    Unlike the other checks it takes one ``protocol``; ``models`` defaults to the
    config's models. ``concurrency`` and ``request_rate`` are per task: with
    ``tasks: N`` the server sees N times as much.
    """

    __pydantic_config__ = _forbid_extra()
    protocol: str = "grpc"
    #: gRPC bidirectional streaming (perf_analyzer's ``--streaming``).
    streaming: bool = False
    #: Models under load at once (each with its own figures); empty = the config's models.
    models: List[str] = field(default_factory=list)
    batch_size: int = 1
    #: Closed loop: requests kept in flight per model, ``"1:16:2"``, ``[1, 2, 4]`` or ``4``.
    concurrency: Union[int, str, List[int], None] = None
    #: Open loop: requests per second per model, ``"100:500:100"``, ``[50, 100]`` or ``100``.
    request_rate: Union[float, str, List[float], None] = None
    #: When open-loop requests are due: evenly spaced, or a Poisson process.
    schedule: str = "constant"
    #: Load before the measurement windows of each point, not measured.
    warmup_s: float = 2.0
    #: Length of one measurement window (perf_analyzer's ``--measurement-interval``).
    window_s: float = 5.0
    stability: StabilityOptions = field(default_factory=StabilityOptions)
    #: perf_analyzer-style input-data JSON; one file, or one per model name.
    input_data: Union[str, Dict[str, str], None] = field(default=None, metadata=FILE)
    #: Dimensions for inputs with dynamic (-1) dims, by input name.
    shapes: Dict[str, List[int]] = field(default_factory=dict)
    #: Slurm tasks of one job (``srun --ntasks``) that generate the load together.
    tasks: int = 1
    #: Per-request timeout; default ``probe.timeout_s``.
    timeout_s: Optional[float] = None

    def __post_init__(self) -> None:
        _check_positive("timeout_s", self.timeout_s)
        _check_protocols([self.protocol])
        if self.streaming and self.protocol != "grpc":
            raise SpecError("streaming needs protocol grpc")
        _check_positive("batch_size", self.batch_size)
        if self.concurrency is not None and self.request_rate is not None:
            raise SpecError("give concurrency or request_rate, not both")
        if self.schedule not in LOAD_SCHEDULES:
            raise SpecError("schedule {!r} is not one of {}".format(
                self.schedule, ", ".join(LOAD_SCHEDULES)))
        _check_positive("warmup_s", self.warmup_s, allow_zero=True)
        _check_positive("window_s", self.window_s)
        _check_positive("tasks", self.tasks)
        for name, dims in self.shapes.items():
            if any(d <= 0 for d in dims):
                raise SpecError(f"shapes.{name}: every dimension must be > 0, got {dims}")
        self.points()  # the range strings must parse

    @property
    def mode(self) -> str:
        """``concurrency`` (closed loop) or ``request_rate`` (open loop)."""
        return "request_rate" if self.request_rate is not None else "concurrency"

    def points(self) -> List[Any]:
        """The sweep's values: concurrencies (ints) or request rates (floats)."""
        if self.request_rate is not None:
            value: Any = self.request_rate
            if isinstance(value, str):
                return parse_range(value, "request_rate", integer=False)
            values = [float(v) for v in (value if isinstance(value, list) else [value])]
            what = "request_rate"
        else:
            value = 1 if self.concurrency is None else self.concurrency
            if isinstance(value, str):
                return parse_range(value, "concurrency", integer=True)
            values = [v for v in (value if isinstance(value, list) else [value])]
            what = "concurrency"
        if not values or any(isinstance(v, bool) or v <= 0 for v in values):
            raise SpecError(f"{what} must be one or more numbers greater than zero, "
                            f"got {value!r}")
        return values


#: Check name -> its options class. The order is the default suite's order.
CHECK_OPTIONS: Dict[str, Any] = {
    "health": HealthOptions,
    "metadata": MetadataOptions,
    "keepalive": KeepaliveOptions,
    "infer": InferOptions,
    "statistics": StatisticsOptions,
    "metrics": MetricsOptions,
    "load": LoadOptions,  # not in DEFAULT_CHECKS: a load test is asked for by name
}

DEFAULT_CHECKS = ["health", "metadata", "keepalive", "infer", "statistics", "metrics"]


@dataclass
class CheckSpec:
    """One check to run and its options."""

    name: str
    options: Any = None

    def __post_init__(self) -> None:
        if self.name not in CHECK_OPTIONS:
            raise SpecError("unknown check {!r}; valid checks: {}".format(
                self.name, ", ".join(CHECK_OPTIONS)))
        if self.options is None:
            self.options = CHECK_OPTIONS[self.name]()


@dataclass
class TaskSpec:
    """Everything one task (one array element, one DiCOS job) runs."""

    task: int
    server: ServerSpec
    models: List[str]
    checks: List[CheckSpec]
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    #: The sweep point this task runs (dotted key -> value); empty without a sweep.
    point: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Spec:
    """The whole ``spec.json``."""

    schema_version: int
    run_id: str
    tasks: List[TaskSpec]

    def task(self, index: int) -> TaskSpec:
        for t in self.tasks:
            if t.task == index:
                return t
        raise SpecError("task {} is not in spec.json (tasks: {})".format(
            index, ", ".join(str(t.task) for t in self.tasks) or "none"))


# --------------------------------------------------------------------------- parsing


def _type_name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, path: str) -> Any:
    """Check ``value`` against annotation ``tp``; build dataclasses from dicts."""
    origin = getattr(tp, "__origin__", None)
    args: Tuple[Any, ...] = tuple(getattr(tp, "__args__", ()) or ())
    if tp is Any:
        return value
    if origin is Union:
        errors = []
        for alt in args:
            try:
                return _convert(alt, value, path)
            except SpecError as exc:
                errors.append(str(exc))
        raise SpecError("{}: expected one of {}, got {!r}".format(
            path, " | ".join(_type_name(a) for a in args), value))
    if tp is type(None):
        if value is not None:
            raise SpecError(f"{path}: expected null, got {value!r}")
        return None
    if origin in (list, List):
        if not isinstance(value, list):
            raise SpecError(f"{path}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise SpecError(f"{path}: expected a mapping, got {value!r}")
        return {_convert(args[0], k, path): _convert(args[1], v, f"{path}.{k}")
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{path}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{path}: expected an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise SpecError(f"{path}: expected {_type_name(tp)}, got {value!r}")
        return value
    raise SpecError(f"{path}: cannot check type {tp}")  # pragma: no cover


def from_dict(cls: Any, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from plain JSON data; unknown keys are errors."""
    where = path or cls.__name__
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SpecError("{}: unknown key(s) {}; valid keys: {}".format(
            where, ", ".join(unknown), ", ".join(fields)))
    kwargs = {}
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name in data:
            if cls is CheckSpec and name == "options":
                opts_cls = CHECK_OPTIONS.get(str(data.get("name")))
                kwargs[name] = from_dict(opts_cls, data[name] or {}, sub) if opts_cls else None
            else:
                kwargs[name] = _convert(hints[name], data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise SpecError(f"{where}: missing required key {name!r}")
    try:
        return cls(**kwargs)
    except SpecError as exc:
        if not path:
            raise
        raise SpecError(f"{where}: {exc}") from None



def load_spec(path: str) -> Spec:
    """Read and validate ``spec.json``; any problem is a ``SpecError``."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read spec {path}: {exc}") from None
    spec = from_dict(Spec, data)
    if spec.schema_version != SPEC_SCHEMA_VERSION:
        raise SpecError(f"spec {path} has schema_version {spec.schema_version}; "
                        f"this probe reads version {SPEC_SCHEMA_VERSION}")
    return spec

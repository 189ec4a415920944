"""What the probe runs: the typed form of ``spec.json``.

These dataclasses are the single definition of the server, probe settings and check
options. The probe validates ``spec.json`` against them with the small stdlib
validator below (it may import nothing but the standard library, tritonclient and
numpy); ``hpctriton.config.models`` uses the very same classes as pydantic field types, so
the YAML file, the JSON Schema and the probe can never disagree about an option.

Python 3.7 compatible: annotations use ``typing`` generics, evaluated by
``typing.get_type_hints``.

``spec.json`` comes in two layouts: 1, every task in full (``tasks``); 2, what every
task shares once (``task``) and each task's sweep point apart, one padded line per
task in ``points.jsonl``, so that a task of a large sweep reads only its own line
(``load_spec(path, task=N)``; README, "The bundle").
"""

import dataclasses
import functools
import json
import os
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

#: The layout ``hpctriton render`` writes: what every task shares once, each sweep
#: point's changes on its own line of ``points.jsonl`` (README, "The bundle").
SPEC_SCHEMA_VERSION = 2
#: Layouts this probe reads: 1 (every task in full, the layout before sweeps of
#: thousands of points) and 2.
READABLE_SPEC_VERSIONS = (1, 2)
PROTOCOLS = ("http", "grpc")

#: A DNS name, an IPv4 address or an IPv6 address (bare or in brackets).
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})|\[?[0-9A-Fa-f:.]+(?:%\w+)?\]?")

#: Field metadata marking a value as a file path (or a mapping of names to paths):
#: ``hpctriton render`` copies such files into the bundle and rewrites the path.
FILE = {"file": True}


class SpecError(ValueError):
    """``spec.json`` (or a config value built from it) is not valid; exit code 2.

    ``field`` is the field of the checked object the message is about (``http_port``,
    ``stability.windows``), so hpctriton's config errors can name the full path;
    ``problems`` holds every error of one check when there were several.
    """

    def __init__(self, message: str, field: Optional[str] = None,
                 problems: Sequence["SpecError"] = ()) -> None:
        super().__init__(message)
        self.field = field
        self.problems = list(problems)


def _all_of(*checks: Callable[[], None]) -> None:
    """Run every check; raise one :class:`SpecError` holding all their errors."""
    problems = []  # type: List[SpecError]
    for check in checks:
        try:
            check()
        except SpecError as exc:
            problems.append(exc)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise SpecError("; ".join(str(p) for p in problems), problems=problems)


def _forbid_extra() -> Dict[str, Any]:
    # Read by pydantic when hpctriton validates these dataclasses; plain data here.
    return {"extra": "forbid"}


def _check_port(name: str, value: Optional[int]) -> None:
    if value is not None and not (1 <= value <= 65535):
        raise SpecError(f"{name} must be between 1 and 65535, got {value}", field=name)


def _check_positive(name: str, value: Optional[float], allow_zero: bool = False) -> None:
    if value is None:
        return
    if value < 0 or (value == 0 and not allow_zero):
        raise SpecError("{} must be {}, got {}".format(
            name, "zero or more" if allow_zero else "greater than zero", value), field=name)


def _check_protocols(protocols: List[str]) -> None:
    for p in protocols:
        if p not in PROTOCOLS:
            raise SpecError("protocol {!r} is not one of {}".format(p, ", ".join(PROTOCOLS)),
                           field="protocols")


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
            raise SpecError(f"host must be a host name or an IP address, got {self.host!r}",
                            field="host")
        _all_of(*(functools.partial(_check_port, name, getattr(self, name))
                  for name in ("http_port", "grpc_port", "metrics_port")))
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
        _all_of(functools.partial(_check_positive, "timeout_s", self.timeout_s),
                functools.partial(_check_positive, "retries", self.retries, allow_zero=True),
                functools.partial(_check_positive, "retry_backoff_s", self.retry_backoff_s,
                                  allow_zero=True))


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
            raise SpecError("keepalive is a gRPC check: protocols must be [grpc]",
                            field="protocols")
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
                raise SpecError(f"shapes.{name}: every dimension must be > 0, got {dims}",
                                field=f"shapes.{name}")


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
#: How the load check counts the tokens of a streamed answer (``token_count``): one per
#: response, the elements of the token output in each response, or the words of its text.
TOKEN_RULES = ("responses", "elements", "words")


@dataclass
class SloOptions:
    """Bounds a streamed request must meet to count towards goodput (any subset):
    time to first token, its mean gap between tokens, and its end-to-end latency."""

    __pydantic_config__ = _forbid_extra()
    ttft_ms: Optional[float] = None
    itl_ms: Optional[float] = None
    e2e_ms: Optional[float] = None

    def __post_init__(self) -> None:
        for name in ("ttft_ms", "itl_ms", "e2e_ms"):
            _check_positive(f"slo.{name}", getattr(self, name))
        if self.ttft_ms is None and self.itl_ms is None and self.e2e_ms is None:
            raise SpecError("slo: give at least one of ttft_ms, itl_ms, e2e_ms")


#: The latency figures a capacity objective may bound, in the order they are shown.
OBJECTIVE_BOUNDS = ("latency_ms", "ttft_ms", "itl_ms")


@dataclass
class ObjectiveOptions:
    """What a capacity search must keep: at least ``percentile`` % of the requests within
    every bound given (any subset, at least one). ``latency_ms`` bounds the time from
    the intended send to the (final) answer; for decoupled models ``ttft_ms`` bounds the
    time to the first token and ``itl_ms`` a request's mean gap between tokens (as
    ``slo`` does)."""

    __pydantic_config__ = _forbid_extra()
    percentile: float = 99.0
    latency_ms: Optional[float] = None
    ttft_ms: Optional[float] = None
    itl_ms: Optional[float] = None

    def __post_init__(self) -> None:
        if isinstance(self.percentile, bool) or not 0.0 < self.percentile < 100.0:
            raise SpecError("search.objective.percentile must lie between 0 and 100 "
                            f"(99 for p99), got {self.percentile}")
        for name in OBJECTIVE_BOUNDS:
            _check_positive(f"search.objective.{name}", getattr(self, name))
        if all(getattr(self, name) is None for name in OBJECTIVE_BOUNDS):
            raise SpecError("search.objective: give at least one bound: "
                            + ", ".join(OBJECTIVE_BOUNDS))

    def bounds_ms(self) -> Dict[str, float]:
        """The bounds given, by name (``{"latency_ms": 100.0}``)."""
        return {n: float(getattr(self, n)) for n in OBJECTIVE_BOUNDS
                if getattr(self, n) is not None}


@dataclass
class SearchOptions:
    """Capacity under a latency objective (``docs/capacity.md``): the highest open-loop
    Poisson rate (requests per second the server receives, all tasks together) whose
    requests meet ``objective``. Rates double from ``min_rate`` until the objective
    fails (or ``max_rate``), then the search bisects between the last rate that met it
    and the first that did not until they are within ``precision_percent`` % or
    ``max_steps`` steps have run. Each step measures at least ``min_requests``
    requests (default: what MLPerf's early-stopping rule needs with none over the
    bound, 459 for p99)."""

    __pydantic_config__ = _forbid_extra()
    objective: ObjectiveOptions
    #: The first rate tried; default ``max_rate / 16``.
    min_rate: Optional[float] = None
    #: The highest rate tried; default: no ceiling (the search doubles until a failure).
    max_rate: Optional[float] = None
    precision_percent: float = 5.0
    min_requests: Optional[int] = None
    max_steps: int = 12

    def __post_init__(self) -> None:
        if self.min_rate is None and self.max_rate is None:
            raise SpecError("search: give min_rate or max_rate (or both), in requests per "
                            "second")
        _check_positive("search.min_rate", self.min_rate)
        _check_positive("search.max_rate", self.max_rate)
        if (self.min_rate is not None and self.max_rate is not None
                and self.min_rate >= self.max_rate):
            raise SpecError(f"search.min_rate ({self.min_rate:g}) must be below "
                            f"search.max_rate ({self.max_rate:g})")
        if not 0.0 < self.precision_percent < 100.0:
            raise SpecError("search.precision_percent must lie between 0 and 100, got "
                            f"{self.precision_percent}")
        _check_positive("search.min_requests", self.min_requests)
        _check_positive("search.max_steps", self.max_steps)

    def start_rate(self) -> float:
        """The first rate tried."""
        if self.min_rate is not None:
            return float(self.min_rate)
        assert self.max_rate is not None  # __post_init__: one of them is given
        return float(self.max_rate) / 16.0


def parse_range(text: str, what: str, integer: bool) -> List[Any]:
    """perf_analyzer's ``start:end:step`` (end included; step defaults to 1; ``"4"``
    alone is one value) as a list of numbers."""
    parts = [p.strip() for p in text.split(":")]
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise SpecError(f"{what}: expected START:END:STEP (like \"1:16:2\"), got {text!r}",
                        field=what)
    try:
        nums = [int(p) if integer else float(p) for p in parts]
    except ValueError:
        raise SpecError("{}: {!r} is not a range of {}".format(
            what, text, "integers" if integer else "numbers"), field=what) from None
    start = nums[0]
    end = nums[1] if len(nums) > 1 else start
    step = nums[2] if len(nums) > 2 else 1
    if start <= 0 or step <= 0 or end < start:
        raise SpecError(f"{what}: {text!r} needs 0 < START <= END and STEP > 0",
                         field=what)
    out = []
    i = 0
    while True:
        value = start + i * step
        if value > end + (0 if integer else 1e-9 * end):
            break
        out.append(value if integer else round(value, 9))
        i += 1
        if i > 10000:
            raise SpecError(f"{what}: {text!r} gives more than 10000 points", field=what)
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
    #: Processes per task generating the load (each about one core): a number, or
    #: ``auto`` (the cores this task may use minus one, at most SLURM_CPUS_PER_TASK).
    workers: Union[int, str] = 1
    #: Per-request timeout (a streamed request: until its last response); default
    #: ``probe.timeout_s``.
    timeout_s: Optional[float] = None
    #: Prompts: JSONL, one ``{"text": ...}`` per line (as genai-perf takes them); one
    #: file, or one per model name. Each prompt goes into ``prompt_input``.
    prompts: Union[str, Dict[str, str], None] = field(default=None, metadata=FILE)
    #: The BYTES input the prompts go into; default: the model's only BYTES input.
    prompt_input: Optional[str] = None
    #: Fixed values of other inputs, by name (``{max_tokens: 64}``): a number, a string,
    #: a list, or perf_analyzer's ``{"content": [...], "shape": [...]}``.
    inputs: Dict[str, Any] = field(default_factory=dict)
    #: Decoupled (streaming) models: the output whose elements are the tokens; default
    #: the model's only output.
    token_output: Optional[str] = None
    #: How tokens are counted: ``elements`` of ``token_output`` in each response,
    #: ``responses`` (one each), or ``words`` (the BYTES text split on white space).
    token_count: str = "elements"
    #: Decoupled models: bounds for goodput (requests meeting every bound, per second).
    slo: Optional[SloOptions] = None
    #: Capacity under a latency objective: the search picks the request rates
    #: (``docs/capacity.md``); excludes ``concurrency`` and ``request_rate``.
    search: Optional[SearchOptions] = None

    def __post_init__(self) -> None:
        _check_positive("timeout_s", self.timeout_s)
        _check_protocols([self.protocol])
        if self.token_count not in TOKEN_RULES:
            raise SpecError("token_count {!r} is not one of {}".format(
                self.token_count, ", ".join(TOKEN_RULES)))
        if self.prompts is not None and self.input_data is not None:
            raise SpecError("give prompts or input_data, not both")
        if self.streaming and self.protocol != "grpc":
            raise SpecError("streaming needs protocol grpc")
        _check_positive("batch_size", self.batch_size)
        if self.concurrency is not None and self.request_rate is not None:
            raise SpecError("give concurrency or request_rate, not both")
        if self.search is not None:
            for name in ("concurrency", "request_rate"):
                if getattr(self, name) is not None:
                    raise SpecError(f"search picks the request rates itself: remove "
                                    f"{name} (or remove search)")
        if self.schedule not in LOAD_SCHEDULES:
            raise SpecError("schedule {!r} is not one of {}".format(
                self.schedule, ", ".join(LOAD_SCHEDULES)))
        _check_positive("warmup_s", self.warmup_s, allow_zero=True)
        _check_positive("window_s", self.window_s)
        _check_positive("tasks", self.tasks)
        if self.workers != "auto" and (isinstance(self.workers, bool)
                                       or not isinstance(self.workers, int)
                                       or self.workers < 1):
            raise SpecError(f"workers must be a number of processes (1 or more) or "
                            f"\"auto\", got {self.workers!r}")
        for name, dims in self.shapes.items():
            if any(d <= 0 for d in dims):
                raise SpecError(f"shapes.{name}: every dimension must be > 0, got {dims}",
                                field=f"shapes.{name}")
        self.points()  # the range strings must parse

    @property
    def mode(self) -> str:
        """``concurrency`` (closed loop) or ``request_rate`` (open loop)."""
        if self.request_rate is not None or self.search is not None:
            return "request_rate"
        return "concurrency"

    def points(self) -> List[Any]:
        """The sweep's values: concurrencies (ints) or request rates (floats)."""
        if self.search is not None:
            return []  # the search picks its rates as it goes
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
                            f"got {value!r}", field=what)
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


def _shown(path: str, value: Any) -> str:
    """``value`` for a message; never a header's (a secret)."""
    return "<hidden>" if ".headers" in path or path.startswith("headers") else repr(value)


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
        others = [a for a in args if a is not type(None)]
        if value is not None and len(others) == 1 and len(errors) == len(args):
            # Optional[X] given a value: X's own error says what is wrong with it
            raise SpecError(errors[list(args).index(others[0])])
        raise SpecError("{}: expected one of {}, got {}".format(
            path, " | ".join(_type_name(a) for a in args), _shown(path, value)))
    if tp is type(None):
        if value is not None:
            raise SpecError(f"{path}: expected null, got {_shown(path, value)}")
        return None
    if origin in (list, List):
        if not isinstance(value, list):
            raise SpecError(f"{path}: expected a list, got {_shown(path, value)}")
        return [_convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            raise SpecError(f"{path}: expected a mapping, got {_shown(path, value)}")
        return {_convert(args[0], k, path): _convert(args[1], v, f"{path}.{k}")
                for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{path}: expected a number, got {_shown(path, value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{path}: expected an integer, got {_shown(path, value)}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise SpecError(f"{path}: expected {_type_name(tp)}, got {_shown(path, value)}")
        return value
    raise SpecError(f"{path}: cannot check type {tp}")  # pragma: no cover


def from_dict(cls: Any, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from plain JSON data; unknown keys are errors."""
    where = path or cls.__name__
    if not isinstance(data, dict):
        raise SpecError(f"{where}: expected a mapping, got {_shown(where, data)}")
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



def load_spec(path: str, task: Optional[int] = None) -> Spec:
    """Read and validate ``spec.json``; any problem is a ``SpecError``.

    With ``task``, a layout-2 spec yields that task alone, and only its own line of the
    points file is read (a task of a sweep of 10,000 points reads a few KB, not the
    whole sweep); without, every task.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SpecError(f"cannot read spec {path}: {exc}") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_SPEC_VERSIONS:
        raise SpecError("spec {} has schema_version {!r}; this probe reads version(s) {}".format(
            path, version, ", ".join(str(v) for v in READABLE_SPEC_VERSIONS)))
    if version == 1:
        return from_dict(Spec, data)
    return _load_layout_2(path, data, task)


@dataclass
class PointsFile:
    """Where a layout-2 spec keeps its sweep points: ``file`` beside spec.json, one JSON
    object per task, each line padded with spaces to ``line_bytes`` (newline included),
    so task N's line starts at byte ``N * line_bytes``."""

    file: str
    line_bytes: int

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.file):
            raise SpecError(f"points.file must be a file name beside spec.json, got "
                            f"{self.file!r}")
        _check_positive("points.line_bytes", self.line_bytes)


@dataclass
class SpecLayout2:
    """spec.json, layout 2: ``task`` is what every task runs (its ``server``, ``models``,
    ``checks``, ``probe``); each task's line of ``points`` (none without a sweep) holds
    its sweep point and its ``changes`` to ``task``: ``[[key, key, …], value]`` pairs,
    each replacing the value at that path of keys."""

    schema_version: int
    run_id: str
    n_tasks: int
    task: Dict[str, Any]
    points: Optional[PointsFile] = None

    def __post_init__(self) -> None:
        _check_positive("n_tasks", self.n_tasks)
        if self.points is None and self.n_tasks != 1:
            raise SpecError(f"n_tasks is {self.n_tasks} but there is no points file")


def read_point(folder: str, points: PointsFile, index: int) -> Dict[str, Any]:
    """Task ``index``'s line of the points file: ``{"task", "point", "changes"}``."""
    path = os.path.join(folder, points.file)
    try:
        with open(path, "rb") as fh:
            fh.seek(index * points.line_bytes)
            raw = fh.read(points.line_bytes)
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc}") from None
    if len(raw) != points.line_bytes or not raw.endswith(b"\n"):
        raise SpecError(f"{path}: the line of task {index} is missing or cut short "
                        f"({len(raw)} of {points.line_bytes} bytes): an incomplete copy?")
    try:
        entry = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise SpecError(f"{path}: the line of task {index} is not JSON: {exc}") from None
    if not isinstance(entry, dict) or entry.get("task") != index:
        raise SpecError(f"{path}: the line at task {index}'s place belongs to task "
                        f"{entry.get('task') if isinstance(entry, dict) else '?'}")
    return entry


def apply_changes(task: Dict[str, Any], changes: Any, where: str) -> Dict[str, Any]:
    """``task`` with each ``[[key, …], value]`` of ``changes`` set (copied along the
    changed paths only; ``task`` itself is left alone)."""
    if not isinstance(changes, list):
        raise SpecError(f"{where}: changes must be a list")
    result = dict(task)
    for change in changes:
        if (not isinstance(change, list) or len(change) != 2 or not change[0]
                or not isinstance(change[0], list)
                or not all(isinstance(k, str) for k in change[0])):
            raise SpecError(f"{where}: each change is [[key, ...], value], got {change!r}")
        keys, value = change
        node = result
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                raise SpecError(f"{where}: {'.'.join(keys)} does not name a value of the "
                                "task")
            node[key] = node = dict(child)
        node[keys[-1]] = value
    return result


def _load_layout_2(path: str, data: Dict[str, Any], task: Optional[int]) -> Spec:
    layout = from_dict(SpecLayout2, data)
    folder = os.path.dirname(os.path.abspath(path))
    indices = range(layout.n_tasks) if task is None else [task]
    tasks = []
    for index in indices:
        if not 0 <= index < layout.n_tasks:
            raise SpecError(f"task {index} is not in spec.json (tasks: 0 to "
                            f"{layout.n_tasks - 1})")
        fields = dict(layout.task)
        point: Any = {}
        if layout.points is not None:
            entry = read_point(folder, layout.points, index)
            where = f"{layout.points.file}, task {index}"
            fields = apply_changes(fields, entry.get("changes", []), where)
            point = entry.get("point", {})
        for key in ("task", "point"):
            if key in fields:
                raise SpecError(f"spec.json: task.{key} is set per task, not in task")
        tasks.append(from_dict(TaskSpec, {**fields, "task": index, "point": point},
                               f"task {index}"))
    return Spec(layout.schema_version, layout.run_id, tasks)

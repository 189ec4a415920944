"""What crosses the job boundary: the documents the probe and ``job.sh`` write and the
host reads back, defined once.

The probe writes them (``results.json``, its entries, ``state.json``, the load
entries' ``details``); ``hpctriton`` reads them (``hpctriton.results``). Both sides
annotate with these types, so a field renamed on one side is a type error on the other.
Keys marked optional (``total=False``) may be absent; a value typed ``Optional`` may be
``null``.

Only the type checker imports this module on the probe side (``TYPE_CHECKING``
blocks): ``typing.TypedDict`` is Python 3.8+, and the probe itself runs on older
interpreters too.
"""

from typing import Any, Dict, List, Optional, TypedDict

#: ``status`` of an entry: passed, failed (the server answered wrongly or not at all),
#: error (the probe could not perform the check), skip (not applicable: see message).
Status = str


class ResultEntry(TypedDict):
    """One line of ``results.json``'s ``checks``: a check, on one protocol, for one
    model (``protocol`` and ``model`` are null where they do not apply)."""

    check: str
    protocol: Optional[str]
    model: Optional[str]
    status: Status
    duration_s: float
    message: str
    details: Dict[str, Any]


class Versions(TypedDict):
    probe: str
    python: str
    tritonclient: Optional[str]


class ServerInfo(TypedDict):
    host: str
    http_port: Optional[int]
    grpc_port: Optional[int]
    metrics_port: Optional[int]
    tls: bool


class _RunInfoRequired(TypedDict):
    run_id: str
    task: int
    hostname: str
    job_id: Optional[str]
    array_job_id: Optional[str]
    array_task_id: Optional[str]
    started_at: str
    ended_at: Optional[str]
    interrupted: bool
    versions: Versions


class RunInfo(_RunInfoRequired, total=False):
    """``results.json``'s ``run``: who ran what, where and when."""

    server: ServerInfo
    models: List[str]
    #: The checks the spec asked for, in order (a crash leaves some without entries).
    checks_planned: List[str]
    #: The task's sweep point (dotted key -> value); empty without a sweep.
    point: Dict[str, Any]
    duration_s: float
    #: ``SIGTERM`` or ``SIGINT`` when ``interrupted``.
    interrupted_by: str


#: Counts per status; ``ok`` is true when nothing failed or errored. ("pass" is a
#: keyword, so only the functional form can name it.)
Summary = TypedDict("Summary", {
    "pass": int, "fail": int, "error": int, "skip": int, "total": int, "ok": bool})


class ResultsDocument(TypedDict):
    """``results/<task>/results.json``."""

    schema_version: int
    run: RunInfo
    checks: List[ResultEntry]
    summary: Summary


class StateFile(TypedDict):
    """``results/<task>/state.json``, written by ``job.sh`` (the lasting record of how
    the job ended): ``phase`` is ``running`` until the final write, then ``finished``
    with the exit code."""

    schema_version: int
    phase: str
    task: int
    job_id: Optional[str]
    host: Optional[str]
    started_at: str
    finished_at: Optional[str]
    exit_code: Optional[int]
    interrupted: bool


# ------------------------------------------------------------------------- load


class LatencyMs(TypedDict):
    """Latency percentiles in milliseconds (null when nothing was answered)."""

    p50: Optional[float]
    p90: Optional[float]
    p95: Optional[float]
    p99: Optional[float]
    max: Optional[float]
    min: Optional[float]
    avg: Optional[float]


class LoadTotals(TypedDict):
    """The whole point, warm-up and drain included."""

    sent: int
    ok: int
    errors: int
    unanswered: int


class LoadWindows(TypedDict):
    run: int
    used: List[int]
    window_s: float
    figures: List[Dict[str, Optional[float]]]


class _LoadPointRequired(TypedDict):
    mode: str
    schedule: Optional[str]
    batch_size: int
    protocol: str
    streaming: bool
    load_index: int
    point_index: int
    tasks: int
    rank: Optional[int]
    throughput_rps: Optional[float]
    throughput_infer_s: Optional[float]
    requests: int
    duration_s: float
    latency_ms: LatencyMs
    errors: Dict[str, int]
    stable: bool
    windows: LoadWindows
    totals: LoadTotals
    errors_total: Dict[str, int]
    error_codes: Dict[str, int]
    error_examples: Dict[str, str]
    inferences_per_request: int
    client: Dict[str, Any]


class LoadPointDetails(_LoadPointRequired, total=False):
    """``details`` of a load entry with a model: one model at one load level.

    The load level is under the key named by ``mode``: ``"concurrency": 4`` (closed
    loop) or ``"request_rate": 200.0`` (open loop, requests per second).
    """

    concurrency: int
    request_rate: float
    #: Open loop: how late the client sent, against the schedule.
    send_lag_ms: Dict[str, Optional[float]]
    #: The server's statistics over the point (rank 0), and its metrics' differences.
    server: Dict[str, Any]
    #: Server successes equal the client's answers (absent where it cannot be said).
    counts_match: bool
    #: Several tasks: how late each task started the point.
    late_s: Any
    outputs_seen: Any


class LoadSetupDetails(TypedDict, total=False):
    """``details`` of the load check's first entry (``model`` null): how it ran."""

    protocol: str
    streaming: bool
    mode: str
    concurrency: List[int]
    request_rate: List[float]
    schedule: Optional[str]
    batch_size: int
    warmup_s: float
    window_s: float
    stability: Dict[str, Any]
    models: Dict[str, Dict[str, Any]]
    load_index: int
    tasks: int
    ranks: int
    rank: int
    engine: str
    rlimit_nofile: Dict[str, Any]
    files: Dict[str, str]
    host: str
    tasks_note: str

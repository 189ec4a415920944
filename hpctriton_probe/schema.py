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

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

#: ``status`` of an entry: passed, failed (the server answered wrongly or not at all),
#: error (the probe could not perform the check), skip (not applicable: see message).
Status = Literal["pass", "fail", "error", "skip"]


class ResultEntry(TypedDict):
    """One line of ``results.json``'s ``checks``: a check, on one protocol, for one
    model (``protocol`` and ``model`` are null where they do not apply).

    ``details`` is each check's own; the load check's follow ``LoadSetupDetails`` (its
    first entry, ``model`` null) and ``LoadPointDetails`` (one model at one point).
    """

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
    phase: Literal["running", "finished"]
    task: int
    #: The scheduler's job id (``ARRAYID_TASK`` for arrays); empty when it gave none.
    job_id: str
    host: str
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


class WindowFigures(TypedDict):
    """One measurement window: answers per second and their mean latency."""

    rps: float
    avg_ms: Optional[float]


class LoadWindows(TypedDict):
    """The windows a point ran (``run``) and those its figures come from (``used``)."""

    run: int
    used: List[int]
    window_s: float
    figures: List[WindowFigures]


class _LoadFiguresRequired(TypedDict):
    throughput_rps: Optional[float]
    throughput_infer_s: Optional[float]
    requests: int
    duration_s: float
    latency_ms: LatencyMs
    #: Failed requests in the windows used, by kind; ``errors_total`` over the point.
    errors: Dict[str, int]
    stable: bool
    windows: LoadWindows
    totals: LoadTotals
    errors_total: Dict[str, int]
    error_codes: Dict[str, int]
    error_examples: Dict[str, str]
    inferences_per_request: int


class LoadFigures(_LoadFiguresRequired, total=False):
    """One model's figures at one point (``loadstats.point_summary``), from one task's
    windows or from the windows of several tasks merged."""

    #: Open loop: how late the client sent, against the schedule.
    send_lag_ms: Dict[str, Optional[float]]
    #: The server's statistics over the point (rank 0), and its metrics' differences.
    server: Dict[str, Any]
    #: Server successes equal the client's answers (absent where it cannot be said).
    counts_match: bool


class _LoadPointRequired(LoadFigures):
    mode: str
    schedule: Optional[str]
    batch_size: int
    protocol: str
    streaming: bool
    load_index: int
    point_index: int
    #: How many tasks made the load; ``rank`` is this one, or null for figures merged
    #: over every task.
    tasks: int
    rank: Optional[int]
    client: Dict[str, Any]


class LoadPointDetails(_LoadPointRequired, total=False):
    """``details`` of a load entry with a model: one model at one load level.

    The load level is under the key named by ``mode``: ``"concurrency": 4`` (closed
    loop) or ``"request_rate": 200.0`` (open loop, requests per second).
    """

    concurrency: int
    request_rate: float
    #: How late the task started the point against its schedule (merged: by rank);
    #: absent when zero.
    late_s: Union[float, Dict[str, float]]
    #: Output names in the model's first answer, or why they could not be read.
    outputs_seen: Union[List[str], str]


class _LoadSetupRequired(TypedDict):
    protocol: str
    streaming: bool
    mode: str
    schedule: Optional[str]
    batch_size: int
    warmup_s: float
    window_s: float
    stability: Dict[str, Any]
    #: Per model prepared for load: its inputs and requests.
    models: Dict[str, Dict[str, Any]]
    load_index: int
    tasks: int
    ranks: int
    rank: int
    engine: str
    rlimit_nofile: Dict[str, Any]
    #: Files written beside ``results.json`` (empty without a results folder).
    files: Dict[str, str]
    host: str


class LoadSetupDetails(_LoadSetupRequired, total=False):
    """``details`` of the load check's first entry (``model`` null): how it ran. The
    points are under the key named by ``mode``."""

    concurrency: List[int]
    request_rate: List[float]
    #: Set when the check asked for more tasks than the job started.
    tasks_note: str

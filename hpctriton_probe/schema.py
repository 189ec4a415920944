"""What crosses the job boundary: the documents the probe and ``job.sh`` write and the
host reads back, defined once.

The probe writes them (``results.json``, its entries, ``state.json``, the load
entries' ``details``); ``hpctriton`` reads them (``hpctriton.results``). Both sides
annotate with these types, so a field renamed on one side is a type error on the other.
Keys marked optional (``total=False``) may be absent; a value typed ``Optional`` may be
``null``.

Only the type checker imports this module on the probe side (``TYPE_CHECKING``
blocks): ``typing.TypedDict`` and ``Literal`` are Python 3.8+, and the probe itself
runs on Python 3.7 too; the lines vermin would flag for that are marked ``novermin``.
"""

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union  # novermin

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
    #: What the probe does differently because of the installed versions (the
    #: pure-Python protobuf for old generated code, deadlines it sets itself…).
    workarounds: List[str]
    #: The first contact with every endpoint, before the checks: how long it took and
    #: which endpoints did not answer at all within their timeout.
    first_contact: "FirstContact"


class FirstContact(TypedDict):
    duration_s: float
    silent: List[str]


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
    phase: Literal["running", "finished"]  # novermin
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


class StreamMs(TypedDict):
    """Percentiles of a streamed answer's times, in milliseconds (null when nothing was
    recorded: ``itl_ms`` of requests that had a single token)."""

    p50: Optional[float]
    p90: Optional[float]
    p95: Optional[float]
    p99: Optional[float]
    max: Optional[float]
    mean: Optional[float]


class TokensPerRequest(TypedDict):
    """Output tokens per request (``p50`` within 0.4 % above 255 tokens)."""

    mean: Optional[float]
    p50: Optional[float]
    max: Optional[int]


class StreamSlo(TypedDict, total=False):
    """The ``slo`` option: bounds in milliseconds (the ITL bound is on a request's
    mean gap between tokens)."""

    ttft_ms: Optional[float]
    itl_ms: Optional[float]
    e2e_ms: Optional[float]


class _StreamRequired(TypedDict):
    #: Time to first token: from the send (open loop: from the intended send time) to
    #: the first response carrying an output.
    ttft_ms: StreamMs
    #: Inter-token latency: the gaps between consecutive responses with outputs.
    itl_ms: StreamMs
    #: End to end: from the send (open loop: intended) to the final response.
    e2e_ms: StreamMs
    tokens_per_request: TokensPerRequest
    output_tokens_per_s: Optional[float]
    requests_per_s: Optional[float]
    #: The token rule used: ``elements``, ``responses`` or ``words``.
    token_count: str
    #: The output whose elements or words were counted (null: ``responses``).
    token_output: Optional[str]


class StreamFigures(_StreamRequired, total=False):
    """A decoupled (streaming) model's figures at one point: the contract of issue 13
    (README, "Streaming and decoupled models"). With an ``slo``: ``goodput_per_s``,
    the requests per second that met every bound, and ``goodput_share``, their share
    of the requests answered."""

    slo: StreamSlo
    goodput_per_s: Optional[float]
    goodput_share: Optional[float]


class StreamInferDetails(TypedDict, total=False):
    """What the infer check adds to ``details`` for a decoupled model: ``responses``
    (with outputs), ``ttft_ms`` (send to first response), ``itl_ms`` (every gap between
    responses, in order), ``e2e_ms`` (to the final response), ``tokens`` (elements of
    the outputs), ``final`` (how the end was known: ``enable_empty_final_response``,
    ``request parameter``, ``end of the event stream``), ``endpoint``
    (``ModelStreamInfer`` or ``generate_stream``)."""

    responses: int
    ttft_ms: Optional[float]
    itl_ms: List[float]
    e2e_ms: Optional[float]
    tokens: int
    final: str
    endpoint: str


class MetricsDuringRun(TypedDict):
    """The run's own difference of a model's Prometheus counters: the scrape after the
    other checks minus the scrape before them (``nv_inference_request_success`` …)."""

    values: Dict[str, Any]
    #: ``nv_inference_count / nv_inference_exec_count`` of the difference (null when
    #: the run executed nothing).
    batching_ratio: Optional[float]


class _MetricsModelRequired(TypedDict):
    #: Every ``nv_inference_*`` counter and gauge since the server started.
    values: Dict[str, Any]
    batching_ratio: Optional[float]


class MetricsModelDetails(_MetricsModelRequired, total=False):
    """``details`` of a metrics entry with a model: the totals since the server started
    (``values``, ``batching_ratio``), and ``during_run``, the run's difference, when a
    scrape before the other checks succeeded (else ``before_error`` says why not)."""

    during_run: MetricsDuringRun
    before_error: str


class LoadFigures(_LoadFiguresRequired, total=False):
    """One model's figures at one point (``loadstats.point_summary``), from one task's
    windows or from the windows of several tasks merged. A decoupled model's add
    those of :class:`StreamFigures` (``ttft_ms``, ``itl_ms``, ``e2e_ms`` …)."""

    ttft_ms: StreamMs
    itl_ms: StreamMs
    e2e_ms: StreamMs
    tokens_per_request: TokensPerRequest
    output_tokens_per_s: Optional[float]
    requests_per_s: Optional[float]
    token_count: str
    token_output: Optional[str]
    slo: StreamSlo
    goodput_per_s: Optional[float]
    goodput_share: Optional[float]

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
    #: A capacity search's step: how it was judged (``CapacityStep``).
    search_step: "CapacityStep"


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
    #: Worker processes of this task (``workers``): count, how it was chosen, option.
    workers: Dict[str, Any]
    #: Decoupled models, by name: ``{"token_count", "token_output"}`` (their requests go
    #: on ModelStreamInfer streams, and their entries carry ``StreamFigures``).
    streams: Dict[str, Dict[str, Any]]
    #: The ``slo`` option, when given.
    slo: StreamSlo
    #: A capacity search (``load.search``): its objective, first rate, requests per
    #: step, precision and steps allowed (docs/capacity.md).
    search: Dict[str, Any]


class CapacityStep(TypedDict):
    """One step of a capacity search (``details.capacity.steps``): the rate tried (all
    tasks together), the objective's percentile there (``percentile_ms``: of the first
    bound, ``percentiles_ms``: of each), whether the client kept the schedule
    (``valid``), the verdict (``PASS``, ``FAIL`` or ``INVALID``) and why, the requests
    measured and how many of them were over a bound (exact counts; failures count as
    over), what MLPerf's early-stopping rule needs with that many over (``needed``),
    and the client's send lag and CPU (``late_share``, ``lag_p99_ms``,
    ``core_share``)."""

    step: int
    rate_per_s: float
    percentile_ms: Optional[float]
    percentiles_ms: Dict[str, Optional[float]]
    valid: bool
    verdict: str
    requests: int
    over_bound: int
    needed: Optional[int]
    errors: int
    throughput_rps: Optional[float]
    late_share: Optional[float]
    late_ms: float
    late: Optional[int]
    lag_p99_ms: Optional[float]
    core_share: Optional[float]
    reason: str


class Capacity(TypedDict):
    """``details.capacity`` of a load check with a ``search`` (docs/capacity.md): the
    highest rate that met the objective (``rate_per_s``, null when none did), the
    objective, ``verdict`` (``VALID``, or ``INVALID`` when the client could not keep a
    step's schedule) and ``reason``, the requests and those over the bound at the
    answer's step, ``met`` (a valid answer exists: the check passes), the last rate
    that met and the first that missed (``bracket``), and every step."""

    rate_per_s: Optional[float]
    objective: Dict[str, Any]
    verdict: str
    reason: str
    met: bool
    requests: int
    over_bound: int
    precision_percent: float
    bracket: List[Optional[float]]
    steps: List[CapacityStep]


class CapacityDetails(TypedDict):
    """``details`` of a load check's capacity entry (one per model, after its steps)."""

    capacity: Capacity
    load_index: int
    protocol: str
    tasks: int
    #: The sentence a report leads with ("simple sustains 42 req/s with p99 ≤ 100 ms …").
    sentence: str

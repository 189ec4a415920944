"""Load: drive models at several concurrencies (closed loop) or request rates (open
loop) and report throughput, latency percentiles, errors and the server's own figures.

Options (``checks: [{load: {...}}]``; see ``spec.LoadOptions``)::

    protocol: grpc            # or http
    streaming: false          # gRPC bidirectional streaming (perf_analyzer --streaming)
    models: []                # default: the config's models; all are loaded at once
    batch_size: 1
    concurrency: "1:16:2"     # or [1, 2, 4] or 4: closed loop, per task
    request_rate: null        # or "100:500:100", [50, 100], 100: open loop, per task
    schedule: constant        # or poisson (open loop)
    warmup_s: 2.0
    window_s: 5.0
    stability: {windows: 3, percent: 10, max_trials: 10}
    input_data: null          # perf_analyzer input-data JSON (one file or {model: file})
    shapes: {}                # {INPUT: [dims]} for dynamic dims
    tasks: 1                  # Slurm tasks of one job that make the load together
    workers: 1                # processes per task (a number, or auto); load.workers
    timeout_s: null           # per request; default probe.timeout_s
    search: null              # capacity under a latency objective, instead of the
                              # two above: {objective: {percentile: 99, latency_ms: 100},
                              # min_rate, max_rate, precision_percent, min_requests,
                              # max_steps} (docs/capacity.md; ``load.search``)

With a ``search`` the rates are the search's steps (all tasks together; Poisson; each
a fixed number of windows, every one measured), each step's entries carry
``details.search_step`` and pass unless the step was INVALID, and one more entry per
model carries ``details.capacity`` (``schema.CapacityDetails``): it passes when a rate
met the objective with a valid client, and fails otherwise. With several tasks rank 0
leads the search through step files (``load.search.StepBoard``).

How a point is measured: load starts, ``warmup_s`` passes unmeasured, then windows of
``window_s`` follow; each answer counts in the window it arrived in. After each window
the rule of perf_analyzer is applied (the last ``stability.windows`` windows within
``stability.percent`` % of their average, throughput and mean latency, for every
model); the point ends when it holds or after ``stability.max_trials`` windows, and its
figures come from those last windows. Then the client waits for the answers still out,
so the client's count of answers over the point equals the server's (``counts_match``).
Closed loop latency runs from sending; open loop latency runs from the time the
schedule meant the request to go out (no coordinated omission), and the client's own
send lag is shown apart. With ``tasks: N`` every task runs every window of every point
(there is no barrier to agree on an early stop) on one wall-clock schedule, and
``hpctriton collect`` merges the tasks' windows and applies the rule to the sums.

Results (``results.json``): first one entry with ``model: null`` describing the run
(protocol, points, open-files limit, files: ``schema.LoadSetupDetails``), then **one
entry per model and point**; ``details`` is that point (``schema.LoadPointDetails``)::

    {"mode": "concurrency", "concurrency": 4,      # or "request_rate": 200.0
     "schedule": "constant", "batch_size": 1, "protocol": "grpc", "streaming": false,
     "load_index": 0, "point_index": 2, "tasks": 1, "rank": 0,
     "throughput_rps": 1830.5, "throughput_infer_s": 1830.5, "requests": 27457,
     "duration_s": 15.0,                            # the windows the figures come from
     "latency_ms": {"p50", "p90", "p95", "p99", "max", "min", "avg"},
     "errors": {"server": 3},                       # in those windows, by kind
     "errors_total": {...}, "error_codes": {"500": 3}, "error_examples": {...},
     "stable": true, "windows": {"run": 5, "used": [2, 3, 4], "window_s": 5.0},
     "totals": {"sent", "ok", "errors", "unanswered"},   # whole point
     "send_lag_ms": {"p50", "p99", "max"},          # open loop only
     "server": {"success", "fail", "inference_count", "execution_count",
                "queue_avg_ms", "compute_input_avg_ms", "compute_infer_avg_ms",
                "compute_output_avg_ms", "request_avg_ms", "batching_ratio",
                "metrics": {"nv_inference_count": ..., "batching_ratio": ...}},
     "counts_match": true,                          # server success == client answers
     "client": {"cpu_s", "wall_s", "cpu_util", "cpu_us_per_request", "connections",
                "workers", "per_worker",           # per_worker: workers > 1
                "self_check": {"cpu_us_per_request", "core_share", "client_bound",
                               "warning", ...}}}   # see stats.self_check

Decoupled models (LLM serving: any number of responses per request, then a final
flag) always go on ``ModelStreamInfer`` streams (``protocol: grpc``; over HTTP their
entry is an ``error``), and their entries add the streaming figures of
``schema.StreamFigures``: ``ttft_ms``, ``itl_ms``, ``e2e_ms`` (p50/p90/p95/p99/max/mean),
``tokens_per_request`` (mean, p50, max), ``output_tokens_per_s``, ``requests_per_s``,
``token_count`` (the rule) and, with an ``slo``, ``goodput_per_s`` and ``goodput_share``
(``load.tokens`` says how tokens are counted). Options for them::

    prompts: prompts.jsonl    # {"text": ...} per line (or {model: file}), into prompt_input
    prompt_input: null        # default: the model's only BYTES input
    inputs: {max_tokens: 64}  # fixed values of other inputs (models that have them)
    token_output: null        # default: the model's only output
    token_count: elements     # or responses, words
    slo: {ttft_ms: 500, itl_ms: 50, e2e_ms: 10000}   # any subset

The client checks itself: from each point's warm-up it knows its CPU per request and
the share of a core each worker needs for the point (``stats.self_check``); above 70 %
the point's message says CLIENT-BOUND and the log warns (the point still passes: the
figures are what the server did, but they may be the client's limit, not the
server's).

A point fails when any request failed or none was answered; a point that never met
the stability rule still passes, with ``stable: false`` and "NOT STABLE" in the
message. Files beside ``results.json``: ``load/rank-<r>.json`` (raw windows and
histograms, see ``loadstats``) and ``load.csv`` (perf_analyzer's ``-f`` columns).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import traceback
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Tuple, Union

from hpctriton_probe.checks.base import Check, CheckContext, as_json, model_info
from hpctriton_probe.load import generator as loadgen
from hpctriton_probe.load import inputs as inp
from hpctriton_probe.load import search as loadsearch
from hpctriton_probe.load import stats as loadstats
from hpctriton_probe.load import tokens as tok
from hpctriton_probe.load import workers as loadworkers
from hpctriton_probe.net import prom
from hpctriton_probe.net.answers import (
    batching_ratio,
    model_metrics,
    normalize_statistics,
    statistics_delta,
)
from hpctriton_probe.net.calls import CallFailure
from hpctriton_probe.spec import CheckSpec, LoadOptions

if TYPE_CHECKING:
    from hpctriton_probe.schema import CapacityDetails, LoadSetupDetails, ResultEntry, Status

log = logging.getLogger("hpctriton_probe")

#: ``ctx.shared`` key of this probe's rank document, which every load check of the
#: task adds its load to.
_DOC_KEY = "load.rank_doc"
#: Several tasks: pause between two points (answers still out arrive, rank 0 reads the
#: server's statistics), and between two load checks (the next one's preparation).
GAP_S = 1.0
PREP_S = 2.0
#: A search from several tasks: rank 0 announces each step this long before it starts,
#: so that every rank has read the step file in time (``load.search.StepBoard``).
STEP_LEAD_S = 2.0
#: At most this many distinct pre-built requests per model (input-data entries).
MAX_VARIANTS = 64


# ------------------------------------------------------------------------ helpers


def raise_open_files() -> Dict[str, Any]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (every connection is a file);
    returns both, before and after."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not a Unix
        return {"error": "no resource module on this platform"}

    def show(value: int) -> Any:
        return "unlimited" if value == resource.RLIM_INFINITY else value

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out: Dict[str, Any] = {"soft_before": show(soft), "hard": show(hard)}
    target = hard
    if hard == resource.RLIM_INFINITY:
        target = 1048576  # the kernel's usual nr_open; "unlimited" is refused
        try:
            with open("/proc/sys/fs/nr_open") as fh:
                target = int(fh.read().strip())
        except (OSError, ValueError):
            pass
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            out["error"] = f"cannot raise the soft limit: {exc}"
    out["soft"] = show(resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    return out


_cpu_s = loadgen.cpu_s


def _load_index(ctx: CheckContext) -> int:
    """The position of this check among the task's load checks (files and schedule)."""
    loads = [c for c in ctx.task.checks if c.name == "load"]
    for i, c in enumerate(loads):
        if c.options is ctx.options:
            return i
    return 0


def ranks_taking_part(options: LoadOptions, launched: int) -> int:
    """How many of the probes a job launched make this load: ``tasks`` of them, at most
    as many as were launched (only a Slurm job under ``srun`` launches several)."""
    return min(options.tasks, launched)


def aligned_offset_s(checks: List[CheckSpec], index: int, launched: int) -> float:
    """Seconds from the job's common start to load check ``index`` (several tasks):
    the sum of the fixed lengths of the multi-task load checks before it."""
    offset = 0.0
    loads = [c for c in checks if c.name == "load"]
    for c in loads[:index]:
        o = c.options
        if ranks_taking_part(o, launched) > 1:
            if o.search is not None:  # an upper bound: the search ends when it ends
                offset += search_span_s(o, float(o.timeout_s or 10.0)) + PREP_S
            else:
                offset += len(o.points()) * point_span_s(o) + PREP_S
    return offset


def _objective_doc(opts: LoadOptions) -> Dict[str, Any]:
    """The search's objective as results show it: ``{"percentile", "latency_ms", ...}``
    (only the bounds given)."""
    assert opts.search is not None
    objective = opts.search.objective
    return dict({"percentile": objective.percentile}, **objective.bounds_ms())


def _search_doc(opts: LoadOptions) -> Dict[str, Any]:
    """The ``search`` option as the setup entry and the rank files record it, with the
    first rate and the requests per step it comes to."""
    s = opts.search
    assert s is not None
    return {"objective": _objective_doc(opts), "min_rate": s.min_rate,
            "max_rate": s.max_rate, "start_rate": s.start_rate(),
            "precision_percent": s.precision_percent,
            "min_requests": int(s.min_requests or loadsearch.default_min_requests(
                s.objective.percentile)),
            "max_steps": s.max_steps}


def search_span_s(opts: LoadOptions, timeout_s: float) -> float:
    """The longest a search from several tasks can take (the next multi-task load check
    starts after it): every step at the length of the first (the longest: the lowest
    rate), each with its announcement and the drain of its answers."""
    s = opts.search
    assert s is not None
    min_requests = int(s.min_requests or loadsearch.default_min_requests(
        s.objective.percentile))
    windows = loadsearch.step_windows(s.start_rate(), min_requests, opts.window_s)
    step = STEP_LEAD_S + opts.warmup_s + windows * opts.window_s + timeout_s + 1.0 + GAP_S
    return s.max_steps * step


def point_span_s(opts: LoadOptions) -> float:
    """Length of one point when several tasks run it: every window, then the gap."""
    return opts.warmup_s + opts.stability.max_trials * opts.window_s + GAP_S


# --------------------------------------------------------------------- preparation


class _Model:
    def __init__(self, name: str, requests: List[bytes], inferences: int,
                 details: Dict[str, Any],
                 stream: Optional[Dict[str, Any]] = None) -> None:
        self.name = name
        self.requests = requests
        self.inferences = inferences
        self.details = details
        #: A decoupled model: ``{"token_count", "token_output", "rule"}``.
        self.stream = stream


def _slo_seconds(opts: LoadOptions) -> Optional[List[Optional[float]]]:
    slo = opts.slo
    if slo is None:
        return None
    return [None if v is None else v / 1000.0 for v in (slo.ttft_ms, slo.itl_ms, slo.e2e_ms)]


def _slo_doc(opts: LoadOptions) -> Optional[Dict[str, Any]]:
    slo = opts.slo
    if slo is None:
        return None
    return {"ttft_ms": slo.ttft_ms, "itl_ms": slo.itl_ms, "e2e_ms": slo.e2e_ms}


def _fixed_inputs(ctx: CheckContext, protocol: str, model: str, meta: Dict[str, Any],
                  decoupled: bool) -> Tuple[List[Dict[str, Any]], List[str], Optional[str]]:
    """``(fixed, optional, prompts_path)``: one ``fixed`` mapping per distinct request
    (the ``inputs`` option, and each prompt in the prompt input), the optional inputs
    of a decoupled model (left out unless given), the prompts file."""
    opts: LoadOptions = ctx.options
    names = {io["name"] for io in meta["inputs"]}
    base = {k: v for k, v in opts.inputs.items() if k in names}  # several models: theirs
    optional: List[str] = []
    if decoupled:
        raw = ctx.call(protocol, "get_model_config", model, what="model config",
                       **as_json(protocol))
        optional = tok.optional_inputs(raw)
    path = inp.resolve_file_option(opts.prompts, model, ctx.base_dir)
    if not path:
        return [base], optional, None
    name = tok.prompt_input(meta, opts.prompt_input)
    if name in base:
        raise inp.InputError(f"inputs.{name} is where the prompts go (prompt_input): "
                             "give it in one place")
    return [dict(base, **{name: text}) for text in tok.read_prompts(path)], optional, path


def _variants(data: Optional[Dict[str, Any]], batch: int) -> List[Optional[Dict[str, Any]]]:
    """perf_analyzer takes input-data entries in turn: request j uses entries
    ``j*batch ...``; the distinct requests that gives, at most MAX_VARIANTS."""
    if not data or not data.get("data"):
        return [data]
    entries = data["data"]
    n = len(entries)
    out: List[Optional[Dict[str, Any]]] = []
    seen = set()
    for j in range(MAX_VARIANTS):
        start = (j * batch) % n
        if start in seen:
            break
        seen.add(start)
        out.append(dict(data, data=entries[start:] + entries[:start]))
    return out


def _prepare(ctx: CheckContext, protocol: str, model: str) -> Union[_Model, ResultEntry]:
    """``_Model`` ready for load, or a result entry saying why not."""
    opts = ctx.options
    started = time.monotonic()
    try:
        meta, config = model_info(ctx, protocol, model)
    except CallFailure as failure:
        return ctx.failure_entry(protocol, model, failure, started)
    decoupled = bool(config["decoupled"])
    if decoupled and protocol == "http":
        return ctx.entry(protocol, model, "error", "decoupled model: over HTTP it answers "
                         "only Triton's generate_stream (server-sent events), which the "
                         "load check does not drive; use protocol: grpc",
                         {"config": config}, started)
    if config["sequence_batching"]:
        return ctx.entry(protocol, model, "skip", "sequence model: every request needs its "
                         "own correlation id, which the load check does not send",
                         {"config": config}, started)
    mbs = config["max_batch_size"]
    details: Dict[str, Any] = {"max_batch_size": mbs,
                               "batch_size": opts.batch_size if mbs > 0 else None}
    stream: Optional[Dict[str, Any]] = None
    try:
        if decoupled:
            output = tok.token_output(meta, opts.token_output, opts.token_count)
            stream = {"token_count": opts.token_count, "token_output": output,
                      "rule": tok.rule_code(opts.token_count)}
            details["stream"] = {"token_count": opts.token_count, "token_output": output}
        data_path = inp.resolve_file_option(opts.input_data, model, ctx.base_dir)
        data = inp.load_data_file(data_path) if data_path else None
        fixed_sets, optional, prompts_path = _fixed_inputs(ctx, protocol, model, meta,
                                                           decoupled)
        ignored = sorted(set(opts.inputs) - {io["name"] for io in meta["inputs"]})
        if ignored:  # inputs of the other models under load (or a typing error: say so)
            details["inputs_not_of_this_model"] = ignored
        requests = []
        host = ctx.server.url("http") or ctx.server.host
        headers = ctx.clients.headers_for(protocol)
        described = None
        for variant in _variants(data, opts.batch_size if mbs > 0 else 1):
            for fixed in fixed_sets:
                prep = inp.prepare(meta, mbs, batch_size=opts.batch_size, shapes=opts.shapes,
                                   data=variant, data_path=data_path or "",
                                   optional=optional, fixed=fixed)
                if described is None:
                    described = prep.describe()
                    details["input_source"] = prompts_path or data_path or (
                        "inputs and synthesized" if opts.inputs else "synthesized")
                    if prep.defaulted_dims:
                        details["defaulted_dims"] = prep.defaulted_dims
                    if prep.left_out:
                        details["optional_left_out"] = prep.left_out
                if protocol == "http":
                    requests.append(loadgen.http_request(host, model, prep.arrays, headers))
                else:
                    requests.append(loadgen.grpc_request(model, prep.arrays, decoupled))
        details["inputs"] = described
        details["distinct_requests"] = len(requests)
        details["request_bytes"] = len(requests[0])
        if prompts_path:
            details["prompts"] = len(fixed_sets)
    except inp.InputError as exc:
        return ctx.entry(protocol, model, "error", str(exc), details, started)
    except CallFailure as failure:
        return ctx.failure_entry(protocol, model, failure, started, details)
    except Exception as exc:  # noqa: BLE001 - a tensor tritonclient cannot encode is ours
        return ctx.entry(protocol, model, "error", "cannot build the request: "
                         f"{type(exc).__name__}: {exc}", details, started)
    return _Model(model, requests, opts.batch_size if mbs > 0 else 1, details, stream)


# ---------------------------------------------------------------- server figures


def _snapshot(ctx: CheckContext, protocol: str, models: List[str]) -> Dict[str, Any]:
    """Statistics (and Prometheus counters when there is a metrics port) per model."""
    stats: Dict[str, Any] = {}
    for model in models:
        try:
            raw = ctx.call(protocol, "get_inference_statistics", model, what="statistics",
                           track_silence=False, **as_json(protocol))
            stats[model] = normalize_statistics(raw, model)
        except CallFailure as failure:
            stats[model] = {"error": failure.message}
    out: Dict[str, Any] = {"statistics": stats, "metrics": None}
    if ctx.server.metrics_port is not None:
        try:
            families = prom.parse(ctx.scrape_metrics())
            out["metrics"] = {m: model_metrics(families, m) for m in models}
        except CallFailure as failure:
            out["metrics"] = {"error": failure.message}
        except Exception as exc:  # noqa: BLE001 - server figures are extras, never fatal
            out["metrics"] = {"error": f"{type(exc).__name__}: {exc}"}
    return out


def _server_delta(before: Dict[str, Any], after: Dict[str, Any], model: str) -> Dict[str, Any]:
    b = (before.get("statistics") or {}).get(model)
    a = (after.get("statistics") or {}).get(model)
    out: Dict[str, Any] = {}
    if isinstance(a, dict) and isinstance(b, dict) and "error" not in a and "error" not in b:
        out.update(statistics_delta(b, a))
    else:
        bad = a if isinstance(a, dict) and "error" in a else b
        out["statistics_error"] = (bad or {}).get("error", "no statistics for the model")
    mb, ma = before.get("metrics"), after.get("metrics")
    if isinstance(mb, dict) and isinstance(ma, dict) and model in mb and model in ma:
        diff: Dict[str, Any] = {}
        for key, value in ma[model].items():
            prior = mb[model].get(key)
            if isinstance(value, (int, float)) and isinstance(prior, (int, float)):
                diff[key] = value if "pending" in key else round(value - prior, 6)
        diff["batching_ratio"] = batching_ratio(diff)
        out["metrics"] = diff
    elif isinstance(ma, dict) and "error" in ma:
        out["metrics_error"] = ma["error"]
    return out


# ------------------------------------------------------------------------- the check


def run(ctx: CheckContext) -> Iterator[ResultEntry]:
    opts: LoadOptions = ctx.options
    rank = ctx.launch.rank
    launched = ctx.launch.ranks
    ranks = ranks_taking_part(opts, launched)
    if rank >= ranks:
        return  # this task is not one of the check's tasks
    protocol = opts.protocol
    started = time.monotonic()
    index = _load_index(ctx)
    url = ctx.server.url(protocol)
    if url is None:
        yield ctx.entry(protocol, None, "skip", f"no server.{protocol}_port configured")
        return
    missing = loadgen.missing_support(protocol, opts.streaming)
    if missing:
        yield ctx.entry(protocol, None, "skip", missing, {"streaming": opts.streaming})
        return
    nofile = raise_open_files()
    models = list(opts.models or ctx.models)
    prepared: List[_Model] = []
    for model in models:
        got = _prepare(ctx, protocol, model)
        if isinstance(got, _Model):
            prepared.append(got)
        elif rank == 0:
            yield got
    values = opts.points()
    mode = opts.mode
    files: Dict[str, str] = {}
    if ctx.out_dir:
        files = {"rank": f"load/rank-{rank}.json",
                 "csv": "load.csv" if index == 0 else f"load-{index}.csv"}
    setup: LoadSetupDetails = {
        "protocol": protocol, "streaming": opts.streaming, "mode": mode,
        "schedule": opts.schedule if mode == "request_rate" else None,
        "batch_size": opts.batch_size, "warmup_s": opts.warmup_s, "window_s": opts.window_s,
        "stability": {"windows": opts.stability.windows, "percent": opts.stability.percent,
                      "max_trials": opts.stability.max_trials},
        "models": {m.name: m.details for m in prepared}, "load_index": index,
        "tasks": opts.tasks, "ranks": ranks, "rank": rank,
        "engine": ("HTTP/1.1 on asyncio" if protocol == "http" else
                   "HTTP/2 on asyncio (the probe's own), " + (
                       "ModelStreamInfer streams" if opts.streaming else "unary calls")),
        "rlimit_nofile": nofile, "files": files, "host": socket.gethostname(),
    }
    streams = {m.name: {"token_count": m.stream["token_count"],
                        "token_output": m.stream["token_output"]}
               for m in prepared if m.stream is not None}
    if streams:
        setup["streams"] = streams
        if not opts.streaming:
            setup["engine"] += "; ModelStreamInfer streams for decoupled models " + \
                ", ".join(sorted(streams))
    slo = _slo_doc(opts)
    if slo is not None:
        setup["slo"] = {"ttft_ms": slo["ttft_ms"], "itl_ms": slo["itl_ms"],
                        "e2e_ms": slo["e2e_ms"]}
    if mode == "request_rate":
        setup["request_rate"] = values
    else:
        setup["concurrency"] = values
    if opts.tasks > launched:
        setup["tasks_note"] = (f"tasks: {opts.tasks} asked, but this job started "
                               f"{launched} (only a Slurm job runs the load from several "
                               "tasks, under srun)")
    if not prepared:
        if rank == 0:
            yield ctx.entry(protocol, None, "error", "no model could be prepared for load",
                            setup, started)
        return
    if opts.search is not None:
        search = _search_doc(opts)
        setup["search"] = search
        setup["schedule"] = "poisson"
        what = "capacity search for {} from {}/s{}".format(
            loadsearch.objective_text(search["objective"]),
            "{:g}".format(search["start_rate"]),
            "" if search["max_rate"] is None else " up to {:g}/s".format(search["max_rate"]))
    else:
        what = "{} {}".format(mode.replace("_", " "), ", ".join(f"{v:g}" for v in values))
    message = "{}{}: {} on {}; open files {} (hard {})".format(
        protocol, " streaming" if opts.streaming else "", what,
        ", ".join(m.name for m in prepared), nofile.get("soft", "?"), nofile.get("hard", "?"))
    if ranks > 1:
        message += f"; task {rank} of {ranks} (figures merged by hpctriton collect)"
    workers, how = loadworkers.resolve(opts.workers)
    setup["workers"] = {"count": workers, "how": how, "option": opts.workers}
    if workers > 1:
        message += f"; {workers} worker processes ({how})"
    if rank == 0:
        yield ctx.entry(protocol, None, "pass", message, setup, started)
    load = _Run(ctx, opts, protocol, url, prepared, ranks, index, files, nofile)
    yield from (load.search() if opts.search is not None else load.points(values))


class _Run:
    """One load check's points on one event loop, and the files it writes."""

    def __init__(self, ctx: CheckContext, opts: LoadOptions, protocol: str, url: str,
                 models: List[_Model], ranks: int, index: int, files: Dict[str, str],
                 nofile: Dict[str, Any]) -> None:
        self.ctx = ctx
        self.opts = opts
        self.protocol = protocol
        #: ``host:port`` of the protocol's endpoint.
        self.url = url
        self.models = models
        self.rank = ctx.launch.rank
        self.ranks = ranks
        self.aligned = ranks > 1
        self.index = index
        self.out_dir = ctx.out_dir
        self.files = files
        self.timeout_s = float(opts.timeout_s or ctx.task.probe.timeout_s)
        #: Several tasks: when the first point starts, on the perf_counter clock.
        self.base: Optional[float] = None
        self._base_epoch: Optional[float] = None
        if self.aligned:
            start_at = ctx.launch.start_at
            epoch = float(start_at if start_at is not None else time.time())
            epoch += aligned_offset_s(ctx.task.checks, index, ctx.launch.ranks)
            self.base = time.perf_counter() + (epoch - time.time())
            self._base_epoch = epoch
        self.load: Dict[str, Any] = {
            "load_index": index, "protocol": protocol, "streaming": opts.streaming,
            "mode": opts.mode, "schedule": opts.schedule, "batch_size": opts.batch_size,
            "warmup_s": opts.warmup_s, "window_s": opts.window_s,
            "stability": {"windows": opts.stability.windows,
                          "percent": opts.stability.percent,
                          "max_trials": opts.stability.max_trials},
            "aligned": self.aligned, "ranks": ranks, "models": [m.name for m in models],
            "interrupted": False, "points": []}
        if opts.search is not None:  # a capacity search: Poisson steps, rates all tasks'
            self.load["schedule"] = "poisson"
            self.load["search"] = _search_doc(opts)
        streams = {m.name: {"token_count": m.stream["token_count"],
                            "token_output": m.stream["token_output"]}
                   for m in models if m.stream is not None}
        if streams:  # decoupled models: their windows hold streamed answers' figures
            self.load["streams"] = streams
            slo = _slo_doc(opts)
            if slo is not None:
                self.load["slo"] = slo
        doc: Optional[Dict[str, Any]] = ctx.shared.get(_DOC_KEY)
        if doc is None:
            doc = ctx.shared[_DOC_KEY] = {
                "format": loadstats.RANK_FORMAT, "rank": self.rank, "ranks": ranks,
                "host": socket.gethostname(), "pid": os.getpid(),
                "run_id": ctx.run_id, "task": ctx.task.task,
                "rlimit_nofile": nofile, "loads": []}
        doc["ranks"] = max(int(doc.get("ranks", 1)), ranks)
        doc["loads"].append(self.load)
        self.doc = doc
        self.engines: Dict[str, Any] = {}
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.workers = loadworkers.resolve(opts.workers)[0]
        self.pool: Optional[loadworkers.WorkerPool] = None
        self._pool_samples: Dict[str, Any] = {}

    # --------------------------------------------------------------------- engines
    def _engine_config(self) -> Dict[str, Any]:
        """How to build this load's engines, picklable (a worker builds its own)."""
        ctx, opts = self.ctx, self.opts
        clients = ctx.clients
        host, _, port = self.url.rpartition(":")
        tls = None
        if ctx.server.tls is not None:
            clients.check_tls_files()
            tls = {"ca": clients.ca, "cert": clients.cert, "key": clients.key,
                   "verify": ctx.server.tls.verify}
        concurrency = max(opts.points()) if opts.mode == "concurrency" else 0
        return {"protocol": self.protocol, "host": host, "port": int(port),
                "timeout_s": self.timeout_s, "tls": tls, "streaming": opts.streaming,
                "headers": clients.headers_for("grpc") if self.protocol == "grpc" else None,
                "decoupled": {m.name: {"token_output": m.stream["token_output"],
                                       "rule": m.stream["rule"]}
                              for m in self.models if m.stream is not None},
                "connections": 1,
                "max_connections": max(int(concurrency), self._connection_cap())}

    async def _make_engines(self) -> None:
        config = self._engine_config()
        self.engines = loadworkers.build_engines(config, [m.name for m in self.models])
        for engine in self.engines.values():
            engine.capture = True
            await engine.warm()

    @staticmethod
    def _connection_cap() -> int:
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            if soft == resource.RLIM_INFINITY:
                return 4096
            return max(16, min(4096, soft // 2 - 32))
        except ImportError:  # pragma: no cover - not a Unix
            return 512

    async def _close_engines(self) -> None:
        for engine in self.engines.values():
            with contextlib.suppress(Exception):  # closing must never lose results
                await engine.close()

    # ------------------------------------------------------------------------ files
    def _write(self) -> None:
        if not self.out_dir:
            return
        from hpctriton_probe.results import atomic_write

        try:
            os.makedirs(os.path.join(self.out_dir, "load"), exist_ok=True)
            atomic_write(os.path.join(self.out_dir, self.files["rank"]),
                         json.dumps(self.doc, separators=(",", ":")) + "\n", durable=False)
            if self.rank == 0:
                summary = loadstats.summarize_load(self.load)
                atomic_write(os.path.join(self.out_dir, self.files["csv"]),
                             loadstats.csv_text(summary), durable=False)
        except OSError as exc:  # a full disk must not stop the load; the log says so
            log.warning("load check: cannot write its files: %s", exc)

    # ----------------------------------------------------------------------- points
    def _open(self) -> None:
        """The event loop and the engines (or the worker processes) of this load."""
        loop = self.loop = asyncio.new_event_loop()
        if self.workers > 1:
            self.pool = loadworkers.WorkerPool(
                self.workers, self._engine_config(),
                [(m.name, m.requests, m.inferences, self._target_stream(m))
                 for m in self.models])
        else:
            loop.run_until_complete(self._make_engines())

    def _measure(self, k: int, value: Any, start: float,
                 windows: Optional[int] = None) -> Dict[str, Any]:
        """Run point ``k`` at ``value`` (this task's share) from ``start``; the point's
        document with the client's figures and self-check (``windows``: a search step's
        fixed number of windows)."""
        t_point = time.perf_counter()
        cpu0 = _cpu_s()
        point = self._run_point(k, value, start, windows)
        cpu1 = _cpu_s()
        wall = time.perf_counter() - t_point
        own = cpu1 - cpu0
        cpu = own + float(point.pop("worker_cpu_s", 0.0))
        answered = sum(int(d.get("ok", 0)) + sum((d.get("errors") or {}).values())
                       for d in point["models"].values())
        warmups = point.pop("warmups", None) or [point.pop("warmup", None)]
        point.pop("warmup", None)
        check = loadstats.self_check(self.opts.mode, value, self.workers, warmups,
                                     (cpu, wall, answered))
        if check.get("warning"):
            log.warning("load check, point %s: %s", value, check["warning"])
        point["client"] = {
            "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
            "connections": point.pop("worker_connections", None) or sum(
                e.connections() for e in self.engines.values()),
            "workers": self.workers, "self_check": check}
        if self.workers > 1:
            point["client"]["coordinator_cpu_s"] = round(own, 4)
            point["client"]["per_worker"] = point.pop("per_worker", [])
        return point

    @contextlib.contextmanager
    def _session(self) -> Iterator[None]:
        """Open the engines; whatever happens, write the load file and shut them down
        (marked interrupted when an exception, Ctrl-C or SIGTERM ends it)."""
        try:
            self._open()
            yield
        except BaseException:
            self.load["interrupted"] = True
            raise
        finally:
            self._write()
            self._shutdown()

    def points(self, values: List[Any]) -> Iterator[ResultEntry]:
        with self._session():
            before = None
            if self.rank == 0 and not self.aligned:
                before = _snapshot(self.ctx, self.protocol, [m.name for m in self.models])
            for k, value in enumerate(values):
                if self.base is not None:  # several tasks: the point's place on the schedule
                    start = self.base + k * point_span_s(self.opts)
                    if self.rank == 0:
                        self._sleep_until(start - 0.25 * GAP_S)
                        before = _snapshot(self.ctx, self.protocol,
                                           [m.name for m in self.models])
                else:
                    start = time.perf_counter() + 0.01
                point = self._measure(k, value, start)
                if self.rank == 0 and before is not None:
                    if self.aligned:
                        end = start + point_span_s(self.opts) - GAP_S
                        self._sleep_until(end + 0.5 * GAP_S)
                    after = self._settled_snapshot(before, point)
                    point["server"] = {m.name: _server_delta(before, after, m.name)
                                       for m in self.models}
                    before = after
                self._samples()
                self.load["points"].append(point)
                self._write()
                yield from self._entries(point)

    # ----------------------------------------------------------------------- search
    def search(self) -> Iterator[ResultEntry]:
        """A capacity search (``load.search``; ``docs/capacity.md``): rank 0 leads,
        the other ranks follow through the step files of ``load.search.StepBoard``."""
        opts = self.opts
        assert opts.search is not None
        board: Optional[loadsearch.StepBoard] = None
        with self._session():
            if self.ranks > 1:
                if not self.out_dir:
                    raise RuntimeError("a search from several tasks needs a results folder")
                session = repr(self.ctx.launch.start_at) + ":" + str(self.ctx.run_id)
                board = loadsearch.StepBoard(
                    os.path.join(self.out_dir, "load", f"search-{self.index}"), self.rank,
                    self.ranks, session)
            if self.rank == 0:
                yield from self._lead(board)
            else:
                assert board is not None
                self._follow(board)

    def _step_wait_s(self) -> float:
        """How long a follower waits for rank 0's next step: a whole step at the first
        rate, the drain of answers still out, and room for rank 0's own calls."""
        return (60.0 + 3 * self.timeout_s + STEP_LEAD_S + self.opts.warmup_s
                + self.first_windows * self.opts.window_s)

    @property
    def first_windows(self) -> int:
        s = self.opts.search
        assert s is not None
        return loadsearch.step_windows(s.start_rate(), self.min_requests, self.opts.window_s)

    @property
    def min_requests(self) -> int:
        s = self.opts.search
        assert s is not None
        return int(s.min_requests or loadsearch.default_min_requests(
            s.objective.percentile))

    def _lead(self, board: Optional[loadsearch.StepBoard]) -> Iterator[ResultEntry]:
        opts = self.opts
        s = opts.search
        assert s is not None
        objective = _objective_doc(opts)
        search = loadsearch.CapacitySearch(s.start_rate(), s.max_rate, s.precision_percent,
                                           s.max_steps)
        names = [m.name for m in self.models]
        per_model: Dict[str, List[loadsearch.Step]] = {m: [] for m in names}
        k = 0
        while True:
            rate = search.next_rate()
            if rate is None:
                break
            windows = loadsearch.step_windows(rate, self.min_requests, opts.window_s)
            before = _snapshot(self.ctx, self.protocol, names)
            if board is not None:
                epoch = max(time.time() + STEP_LEAD_S, self._base_epoch or 0.0)
                board.announce(k, {"rate": rate, "windows": windows, "start_epoch": epoch})
                start = time.perf_counter() + (epoch - time.time())
            else:
                start = time.perf_counter() + 0.01
            point = self._measure(k, rate / self.ranks, start, windows)
            point["value"] = rate
            point["search"] = {"step": k, "rate": rate, "windows": windows,
                               "ranks": self.ranks}
            self.load["points"].append(point)
            self._write()
            merged, problem = point, None
            if board is not None:
                span = opts.warmup_s + windows * opts.window_s
                deadline = time.monotonic() + span + 2 * self.timeout_s + 30.0
                try:
                    others = board.collect(k, deadline)
                    merged = self._merged_point(point, others)
                except loadsearch.BoardTimeout as exc:
                    problem = f"the ranks did not all report step {k}: {exc}"
            after = self._settled_snapshot(before, merged)
            merged["server"] = point["server"] = {
                m: _server_delta(before, after, m) for m in names}
            self._samples()
            load = self.load if board is None else dict(self.load, points=[merged])
            summary = loadstats.point_summary(load, merged)
            steps = []
            for m in names:
                figures = loadsearch.step_figures(merged, summary, m, objective)
                if problem:
                    figures.problem = problem
                step = loadsearch.judge(rate, figures, objective)
                per_model[m].append(step)
                steps.append(step)
            step = loadsearch.combine(steps)
            search.record(step)
            # the verdicts go into the rank file too: collect's merged entries say the same
            point["search"].update(verdict=step.verdict, reason=step.reason, models={
                m: per_model[m][-1].to_json(k, objective) for m in names})
            merged["search"] = point["search"]
            self._write()
            yield from loadstats.entries(load, merged, rank=None if board else 0,
                                         ranks=self.ranks)
            k += 1
        if board is not None:
            board.finish(k)
        capacities = {}
        for m in names:
            own = loadsearch.CapacitySearch(s.start_rate(), s.max_rate, s.precision_percent,
                                            s.max_steps)
            for step in per_model[m]:
                own.record(step)
            own.ended = search.ended
            capacity = own.result(objective)
            if len(names) > 1:  # several models: the search's common answer decides
                common = search.result(objective)
                capacity["rate_per_s"] = common["rate_per_s"]
                capacity["verdict"] = common["verdict"]
                capacity["reason"] = common["reason"]
                capacity["met"] = common["met"]
                capacity["bracket"] = common["bracket"]
            capacities[m] = capacity
        self.load["capacity"] = capacities
        self._write()
        for m in names:
            capacity = capacities[m]
            text = loadsearch.sentence(m, capacity)
            status: Status = "pass" if capacity["met"] else "fail"
            if capacity["verdict"] == loadsearch.VALID and capacity["rate_per_s"] is not None:
                message = text + "; " + capacity["reason"]
            else:
                message = text if capacity["verdict"] != loadsearch.VALID else \
                    text + "; " + capacity["reason"]
            details: CapacityDetails = {"capacity": capacity, "load_index": self.index,
                                        "protocol": self.protocol, "tasks": self.ranks,
                                        "sentence": text}
            yield self.ctx.entry(self.protocol, m, status, message, details)

    def _merged_point(self, own: Dict[str, Any],
                      others: Dict[int, Dict[str, Any]]) -> Dict[str, Any]:
        """This rank's point and the other ranks' as one point (``stats.merge_rank_docs``)."""
        docs = [{"format": loadstats.RANK_FORMAT, "rank": r, "ranks": self.ranks,
                 "loads": [dict(self.load, points=[p])]}
                for r, p in [(0, own)] + sorted(others.items())]
        return loadstats.merge_rank_docs(docs)["loads"][0]["points"][0]

    def _follow(self, board: loadsearch.StepBoard) -> None:
        k = 0
        while True:
            try:
                doc = board.next_step(k, time.monotonic() + self._step_wait_s())
            except loadsearch.BoardTimeout as exc:
                log.error("load check, rank %d: %s; leaving the search", self.rank, exc)
                return
            if doc is None:
                return
            rate = float(doc["rate"])
            windows = int(doc["windows"])
            start = time.perf_counter() + (float(doc["start_epoch"]) - time.time())
            point = self._measure(k, rate / self.ranks, start, windows)
            point["value"] = rate
            point["search"] = {"step": k, "rate": rate, "windows": windows,
                               "ranks": self.ranks}
            self._samples()
            self.load["points"].append(point)
            self._write()
            board.report(k, point)
            k += 1

    def _settled_snapshot(self, before: Dict[str, Any], point: Dict[str, Any]) -> Dict[str, Any]:
        """The server's figures after a point. Triton books a request in its
        statistics just after sending the answer, so a snapshot taken the moment the
        last answer arrived may miss the last few: while the server has counted fewer
        successes than this process received, read again (at most about 1 s)."""
        names = [m.name for m in self.models]
        after = _snapshot(self.ctx, self.protocol, names)
        if self.ranks > 1:
            return after  # the other ranks' answers are not known here
        for pause in (0.02, 0.05, 0.1, 0.2, 0.3, 0.4):
            behind = False
            for m in self.models:
                delta = _server_delta(before, after, m.name)
                data = point["models"].get(m.name) or {}
                decoupled = m.stream is not None
                counted = loadstats.server_count(delta, decoupled)
                seen = loadstats.client_count(int(data.get("ok", 0)), data.get("errors") or {},
                                              decoupled)
                if counted is not None and counted < seen:
                    behind = True
            if not behind:
                break
            time.sleep(pause)
            after = _snapshot(self.ctx, self.protocol, names)
        return after

    def _sleep_until(self, t: float) -> None:
        delay = t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    def _plan_args(self, k: int, value: Any, start: float, worker: int,
                   windows: Optional[int] = None) -> Dict[str, Any]:
        """``PointPlan`` arguments of one worker (``worker`` 0 of 1: this process);
        ``windows``: a search step, that many windows, Poisson, counting the requests
        over the objective's bounds."""
        opts = self.opts
        n = self.workers
        if opts.mode == "request_rate":
            share: Any = float(value) / n
        else:
            share = loadworkers.split_concurrency(int(value), n)[worker]
        args = dict(
            mode=opts.mode, value=share, start=start, warmup_s=opts.warmup_s,
            window_s=opts.window_s, max_windows=opts.stability.max_trials,
            stable_windows=opts.stability.windows, percent=opts.stability.percent,
            early_stop=not self.aligned, drain_s=self.timeout_s + 1.0,
            schedule=opts.schedule,
            phase=loadworkers.worker_phase(worker, n, self.rank, self.ranks),
            seed=(self.rank, k, self.index) if n == 1 else (self.rank, k, self.index, worker))
        if windows is not None and opts.search is not None:
            bounds = opts.search.objective
            args.update(max_windows=windows, stable_windows=windows, early_stop=False,
                        schedule="poisson",
                        bounds=tuple(None if b is None else b / 1000.0 for b in (
                            bounds.latency_ms, bounds.ttft_ms, bounds.itl_ms)))
        return args

    def _run_point(self, k: int, value: Any, start: float,
                   windows: Optional[int] = None) -> Dict[str, Any]:
        if self.pool is not None:
            opts = self.opts
            epoch = time.time() + (start - time.perf_counter())
            plans = []
            for j in range(self.workers):
                args = self._plan_args(k, value, start, j, windows)
                del args["start"]
                args["start_epoch"] = epoch
                plans.append(args)
            first = plans[0]
            span = opts.warmup_s + first["max_windows"] * opts.window_s
            result = self.pool.run_point(
                plans, early_stop=bool(first["early_stop"]),
                stable_windows=first["stable_windows"],
                percent=opts.stability.percent, max_windows=first["max_windows"],
                mode=opts.mode, value=value,
                deadline_s=max(0.0, start - time.perf_counter()) + span + self.timeout_s + 30)
            for model, sample in self.pool.samples.items():
                if model in self.engines:
                    self.engines[model].sample = sample
                else:
                    self._pool_samples[model] = sample
            self.pool.samples = {}
            result.update(index=k, value=value)
            return result
        plan = loadgen.PointPlan(**self._plan_args(k, value, start, 0, windows))
        targets = [loadgen.Target(m.name, m.requests, m.inferences, self._target_stream(m))
                   for m in self.models]
        assert self.loop is not None
        result = self.loop.run_until_complete(loadgen.run_point(plan, targets, self.engines))
        result.update(index=k, value=value)
        return result

    def _target_stream(self, model: _Model) -> Optional[Dict[str, Any]]:
        """``Target.stream`` of a model: None, or for a decoupled one its SLO bounds."""
        if model.stream is None:
            return None
        return {"slo": _slo_seconds(self.opts)}

    def _samples(self) -> None:
        """Names of the outputs in the first answer of each model (a sanity check that
        costs one parse per run)."""
        for m in self.models:
            engine = self.engines.get(m.name)
            if engine is not None:
                sample, engine.sample = engine.sample, None
            else:
                sample = self._pool_samples.pop(m.name, None)
            if sample is None:
                continue
            try:
                m.details["outputs_seen"] = _output_names(self.protocol, self.opts.streaming
                                                          or m.stream is not None,
                                                          sample)
            except Exception as exc:  # noqa: BLE001 - a nicety, never a failure
                m.details["outputs_seen"] = f"cannot parse the answer: {exc}"

    def _shutdown(self) -> None:
        if self.pool is not None:
            try:
                self.pool.close()
            except Exception:  # noqa: BLE001 - shutting down must never hide the cause
                log.warning("load check: stopping its workers failed:\n%s",
                            traceback.format_exc(limit=3))
            self.pool = None
        loop = self.loop
        if loop is None:
            return
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=2.0))
            loop.run_until_complete(asyncio.wait_for(self._close_engines(), 5.0))
        except BaseException:  # noqa: BLE001 - shutting down must never hide the cause
            log.warning("load check: shutting down its event loop failed:\n%s",
                        traceback.format_exc(limit=3))
        finally:
            loop.close()
            self.loop = None

    # ----------------------------------------------------------------------- entries
    def _entries(self, point: Dict[str, Any]) -> Iterator[ResultEntry]:
        if self.rank != 0:
            return
        for entry in loadstats.entries(self.load, point, rank=self.rank, ranks=self.ranks):
            seen = next((m.details.get("outputs_seen") for m in self.models
                         if m.name == entry["model"]), None)
            if seen is not None:
                entry["details"]["outputs_seen"] = seen
            yield entry


def _output_names(protocol: str, streaming: bool, sample: Any) -> List[str]:
    if protocol == "http":
        head, body = sample
        low = head.lower()
        pos = low.find(b"inference-header-content-length:")
        size = len(body)
        if pos >= 0:
            end = low.find(b"\r\n", pos)
            size = int(low[pos + 32:end if end > 0 else None])
        doc = json.loads(body[:size].decode("utf-8"))
        return [o.get("name") for o in doc.get("outputs", [])]
    from tritonclient.grpc import service_pb2

    if streaming:
        response = service_pb2.ModelStreamInferResponse.FromString(sample).infer_response
    else:
        response = service_pb2.ModelInferResponse.FromString(sample)
    return [o.name for o in response.outputs]


CHECK = Check("load", LoadOptions, run, ranks=ranks_taking_part)

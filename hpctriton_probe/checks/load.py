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
    timeout_s: null           # per request; default probe.timeout_s

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
     "client": {"cpu_s", "wall_s", "cpu_util", "cpu_us_per_request", "connections"}}

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
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Union

from hpctriton_probe.checks.base import Check, CheckContext, as_json, model_info
from hpctriton_probe.load import generator as loadgen
from hpctriton_probe.load import inputs as inp
from hpctriton_probe.load import stats as loadstats
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
    from hpctriton_probe.schema import LoadSetupDetails, ResultEntry

log = logging.getLogger("hpctriton_probe")

#: ``ctx.shared`` key of this probe's rank document, which every load check of the
#: task adds its load to.
_DOC_KEY = "load.rank_doc"
#: Several tasks: pause between two points (answers still out arrive, rank 0 reads the
#: server's statistics), and between two load checks (the next one's preparation).
GAP_S = 1.0
PREP_S = 2.0
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


def _cpu_s() -> float:
    try:
        import resource

        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime
    except ImportError:  # pragma: no cover - not a Unix
        return time.process_time()


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
            offset += len(o.points()) * point_span_s(o) + PREP_S
    return offset


def point_span_s(opts: LoadOptions) -> float:
    """Length of one point when several tasks run it: every window, then the gap."""
    return opts.warmup_s + opts.stability.max_trials * opts.window_s + GAP_S


# --------------------------------------------------------------------- preparation


class _Model:
    def __init__(self, name: str, requests: List[bytes], inferences: int,
                 details: Dict[str, Any]) -> None:
        self.name = name
        self.requests = requests
        self.inferences = inferences
        self.details = details


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
    if config["decoupled"]:
        return ctx.entry(protocol, model, "skip", "decoupled model: it answers on a stream "
                         "with any number of responses, which the load check does not "
                         "drive", {"config": config}, started)
    if config["sequence_batching"]:
        return ctx.entry(protocol, model, "skip", "sequence model: every request needs its "
                         "own correlation id, which the load check does not send",
                         {"config": config}, started)
    mbs = config["max_batch_size"]
    details: Dict[str, Any] = {"max_batch_size": mbs,
                               "batch_size": opts.batch_size if mbs > 0 else None}
    try:
        data_path = inp.resolve_file_option(opts.input_data, model, ctx.base_dir)
        data = inp.load_data_file(data_path) if data_path else None
        requests = []
        host = ctx.server.url("http") or ctx.server.host
        headers = ctx.clients.headers_for(protocol)
        described = None
        for variant in _variants(data, opts.batch_size if mbs > 0 else 1):
            prep = inp.prepare(meta, mbs, batch_size=opts.batch_size, shapes=opts.shapes,
                               data=variant, data_path=data_path or "")
            if described is None:
                described = prep.describe()
                details["input_source"] = data_path or "synthesized"
                if prep.defaulted_dims:
                    details["defaulted_dims"] = prep.defaulted_dims
            if protocol == "http":
                requests.append(loadgen.http_request(host, model, prep.arrays, headers))
            else:
                requests.append(loadgen.grpc_request(model, prep.arrays))
        details["inputs"] = described
        details["distinct_requests"] = len(requests)
        details["request_bytes"] = len(requests[0])
    except inp.InputError as exc:
        return ctx.entry(protocol, model, "error", str(exc), details, started)
    except Exception as exc:  # noqa: BLE001 - a tensor tritonclient cannot encode is ours
        return ctx.entry(protocol, model, "error", "cannot build the request: "
                         f"{type(exc).__name__}: {exc}", details, started)
    return _Model(model, requests, opts.batch_size if mbs > 0 else 1, details)


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
        url = "http://{}/metrics".format(ctx.server.url("metrics"))
        try:
            text = prom.fetch(url, ctx.clients.headers_for("metrics"), ctx.timeout_s)
            families = prom.parse(text)
            out["metrics"] = {m: model_metrics(families, m) for m in models}
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
                   "grpc.aio " + ("streams" if opts.streaming else "unary calls")),
        "rlimit_nofile": nofile, "files": files, "host": socket.gethostname(),
    }
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
    message = "{}{}: {} {} on {}; open files {} (hard {})".format(
        protocol, " streaming" if opts.streaming else "", mode.replace("_", " "),
        ", ".join(f"{v:g}" for v in values), ", ".join(m.name for m in prepared),
        nofile.get("soft", "?"), nofile.get("hard", "?"))
    if ranks > 1:
        message += f"; task {rank} of {ranks} (figures merged by hpctriton collect)"
    if rank == 0:
        yield ctx.entry(protocol, None, "pass", message, setup, started)
    yield from _Run(ctx, opts, protocol, url, prepared, ranks, index, files,
                    nofile).points(values)


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
        if self.aligned:
            start_at = ctx.launch.start_at
            epoch = float(start_at if start_at is not None else time.time())
            epoch += aligned_offset_s(ctx.task.checks, index, ctx.launch.ranks)
            self.base = time.perf_counter() + (epoch - time.time())
        self.load: Dict[str, Any] = {
            "load_index": index, "protocol": protocol, "streaming": opts.streaming,
            "mode": opts.mode, "schedule": opts.schedule, "batch_size": opts.batch_size,
            "warmup_s": opts.warmup_s, "window_s": opts.window_s,
            "stability": {"windows": opts.stability.windows,
                          "percent": opts.stability.percent,
                          "max_trials": opts.stability.max_trials},
            "aligned": self.aligned, "ranks": ranks, "models": [m.name for m in models],
            "interrupted": False, "points": []}
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

    # --------------------------------------------------------------------- engines
    async def _make_engines(self) -> None:
        ctx, opts = self.ctx, self.opts
        clients = ctx.clients
        for m in self.models:
            if self.protocol == "http":
                host, _, port = self.url.rpartition(":")
                tls = None
                if ctx.server.tls is not None:
                    clients.check_tls_files()
                    tls = loadgen.http_ssl_context(clients.ca, clients.cert, clients.key,
                                                   ctx.server.tls.verify)
                concurrency = max(opts.points()) if opts.mode == "concurrency" else 0
                self.engines[m.name] = loadgen.HttpEngine(
                    host, int(port), timeout_s=self.timeout_s, ssl_context=tls,
                    max_connections=max(int(concurrency), self._connection_cap()))
            else:
                tls_files = None
                if ctx.server.tls is not None:
                    clients.check_tls_files()
                    tls_files = {"ca": clients.ca, "cert": clients.cert, "key": clients.key}
                self.engines[m.name] = loadgen.GrpcEngine(
                    self.url, timeout_s=self.timeout_s,
                    headers=clients.headers_for("grpc"), tls=tls_files,
                    streaming=opts.streaming)
            self.engines[m.name].capture = True
            await self.engines[m.name].warm()

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
    def points(self, values: List[Any]) -> Iterator[ResultEntry]:
        loop = self.loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._make_engines())
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
                t_point = time.perf_counter()
                cpu0 = _cpu_s()
                point = self._run_point(k, value, start)
                cpu1 = _cpu_s()
                point["client"] = {
                    "cpu_s": round(cpu1 - cpu0, 4),
                    "wall_s": round(time.perf_counter() - t_point, 4),
                    "connections": sum(e.connections() for e in self.engines.values())}
                if self.rank == 0 and before is not None:
                    if self.aligned:
                        end = start + point_span_s(self.opts) - GAP_S
                        self._sleep_until(end + 0.5 * GAP_S)
                    after = _snapshot(self.ctx, self.protocol, [m.name for m in self.models])
                    point["server"] = {m.name: _server_delta(before, after, m.name)
                                       for m in self.models}
                    before = after
                self._samples()
                self.load["points"].append(point)
                self._write()
                yield from self._entries(point)
        except BaseException:
            self.load["interrupted"] = True
            raise
        finally:
            self._write()
            self._shutdown()

    def _sleep_until(self, t: float) -> None:
        delay = t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)

    def _run_point(self, k: int, value: Any, start: float) -> Dict[str, Any]:
        opts = self.opts
        plan = loadgen.PointPlan(
            mode=opts.mode, value=value, start=start, warmup_s=opts.warmup_s,
            window_s=opts.window_s, max_windows=opts.stability.max_trials,
            stable_windows=opts.stability.windows, percent=opts.stability.percent,
            early_stop=not self.aligned, drain_s=self.timeout_s + 1.0,
            schedule=opts.schedule, phase=self.rank / float(self.ranks),
            seed=(self.rank, k, self.index))
        targets = [loadgen.Target(m.name, m.requests, m.inferences) for m in self.models]
        assert self.loop is not None
        result = self.loop.run_until_complete(loadgen.run_point(plan, targets, self.engines))
        result.update(index=k, value=value)
        return result

    def _samples(self) -> None:
        """Names of the outputs in the first answer of each model (a sanity check that
        costs one parse per run)."""
        for m in self.models:
            engine = self.engines[m.name]
            sample, engine.sample = engine.sample, None
            if sample is None:
                continue
            try:
                m.details["outputs_seen"] = _output_names(self.protocol, self.opts.streaming,
                                                          sample)
            except Exception as exc:  # noqa: BLE001 - a nicety, never a failure
                m.details["outputs_seen"] = f"cannot parse the answer: {exc}"

    def _shutdown(self) -> None:
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

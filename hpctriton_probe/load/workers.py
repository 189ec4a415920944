"""``workers: N | auto``: the load of one task from N processes, so that every core of
a client node generates load (one Python process drives about one core).

The probe's process coordinates and sends nothing itself; each worker is a fresh
interpreter (``sys.executable``, the probe's package first on its path) that imports
the standard library only — the requests arrive pre-built, so a worker starts in
about 50 ms and needs neither numpy nor tritonclient. Why processes started anew and
not ``fork``: the probe's other checks leave grpcio threads behind, and forking a
process with threads is unsafe (Python 3.12 warns about it).

Per point the coordinator sends each worker its share and the common start time
(wall clock; every worker converts it to its own monotonic clock):

* closed loop: the concurrency split as evenly as it goes (5 over 2 workers: 3 + 2);
* open loop: the rate split in N equal streams whose merge is the configured
  process. Constant: each worker at rate/N, worker j shifted by j/N of its own gap
  (with several tasks, rank r adds r/(ranks·N)), so the merged send times are evenly
  spaced at the full rate. Poisson: N independent Poisson streams at rate/N (seeds
  apart), whose merge is a Poisson process at the full rate.

Each worker reports the end of its warm-up (the client self-check) and of every window
(answers and mean latency per model); the coordinator applies the stability rule to
the sums and tells all to stop, as one process would. At the end of the point each
worker sends its windows, which are merged like ranks (``stats.merge_rank_docs``).

Messages on the pipes: a 4-octet length and a pickle (both ends are this code, same
interpreter). Standard library only; Python 3.7 compatible.
"""

import asyncio
import contextlib
import logging
import os
import pickle
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
from typing import IO, Any, Dict, List, Optional, Set, Tuple

import hpctriton_probe
from hpctriton_probe.load import generator as loadgen
from hpctriton_probe.load import stats as loadstats

log = logging.getLogger("hpctriton_probe")

#: The folder (or zip file) that holds the ``hpctriton_probe`` package.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(hpctriton_probe.__file__)))
BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "from hpctriton_probe.load.workers import worker_main; sys.exit(worker_main())")
START_S = 30.0


def auto_workers(environ: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    """``(count, how)`` for ``workers: auto``: the cores this process may use minus one
    (one for the server's share, the coordinator and the system), at least 1, at most
    ``SLURM_CPUS_PER_TASK`` where Slurm sets it."""
    env = os.environ if environ is None else environ
    try:
        cores = len(os.sched_getaffinity(0))  # type: ignore[attr-defined,unused-ignore]
        what = "cores this process may use"
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
        what = "cores of the node"
    count = max(1, cores - 1)
    how = f"{cores} {what}, minus one"
    slurm = env.get("SLURM_CPUS_PER_TASK", "").strip()
    if slurm.isdigit() and int(slurm) > 0 and int(slurm) < count:
        count = int(slurm)
        how += f", capped by SLURM_CPUS_PER_TASK={slurm}"
    return count, how


def resolve(option: Any, environ: Optional[Dict[str, str]] = None) -> Tuple[int, str]:
    """The number of worker processes for the ``workers`` option, and why."""
    if option in (None, 1):
        return 1, "one process"
    if option == "auto":
        return auto_workers(environ)
    return int(option), "as configured"


def split_concurrency(total: int, workers: int) -> List[int]:
    return [total // workers + (1 if j < total % workers else 0) for j in range(workers)]


def worker_phase(worker: int, workers: int, rank: int, ranks: int) -> float:
    """Offset of a worker's constant schedule, in units of its own gap."""
    return (worker + rank / float(ranks)) / workers


# -------------------------------------------------------------------- framing


def _send(stream: Any, message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(data).to_bytes(4, "big") + data)
    stream.flush()


def _read_exact(fd: int, n: int) -> Optional[bytes]:
    parts = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def _recv(fd: int) -> Any:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, int.from_bytes(head, "big"))
    return None if body is None else pickle.loads(body)


# ----------------------------------------------------------------- coordinator


def _pipe(stream: Optional[IO[bytes]]) -> IO[bytes]:
    assert stream is not None  # Popen with stdin/stdout=PIPE
    return stream


class WorkerError(RuntimeError):
    """A worker process failed or stopped answering: the point has no figures."""


class WorkerPool:
    """N worker processes driving the same engines' load, and their coordination.

    ``config``: how a worker builds its engines (``build_engines``); ``targets``:
    ``(model, requests, inferences[, stream])`` each (``generator.Target``'s arguments).
    """

    def __init__(self, count: int, config: Dict[str, Any],
                 targets: List[Tuple[Any, ...]]) -> None:
        self.count = count
        self.procs: List[subprocess.Popen] = []
        self.samples: Dict[str, Any] = {}
        self.connections = 0
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        for _ in range(count):
            proc = subprocess.Popen([sys.executable, "-c", BOOT, ROOT], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, env=env, close_fds=True)
            self.procs.append(proc)
        for j, proc in enumerate(self.procs):
            _send(proc.stdin, ("init", {"config": config, "targets": targets, "worker": j,
                                        "capture": j == 0}))
        deadline = time.monotonic() + START_S + float(config.get("timeout_s", 10))
        for j in range(count):
            kind, body = self._expect(j, deadline)
            if kind != "ready":
                raise WorkerError(f"worker {j} did not start: {body}")

    def _expect(self, j: int, deadline: float) -> Tuple[str, Any]:
        proc = self.procs[j]
        stdout = _pipe(proc.stdout)
        sel = selectors.DefaultSelector()
        sel.register(stdout, selectors.EVENT_READ)
        try:
            if not sel.select(max(0.0, deadline - time.monotonic())):
                raise WorkerError(f"worker {j} did not answer in time")
        finally:
            sel.close()
        message = _recv(stdout.fileno())
        if message is None:
            raise WorkerError(f"worker {j} ended (exit code {proc.poll()})")
        if message[0] == "error":
            raise WorkerError(f"worker {j} failed:\n{message[1]}")
        return message[0], message[1]

    def run_point(self, plans: List[Dict[str, Any]], *, early_stop: bool, stable_windows: int,
                  percent: float, max_windows: int, mode: str, value: float,
                  deadline_s: float) -> Dict[str, Any]:
        """Run one point on every worker (``plans[j]``: ``PointPlan`` arguments, with
        ``start_epoch``); returns the merged point (``run_point``'s form) plus the
        workers' CPU and the self-check."""
        for proc, plan in zip(self.procs, plans):  # noqa: B905 - 3.7
            _send(proc.stdin, ("point", plan))
        deadline = time.monotonic() + deadline_s
        sel = selectors.DefaultSelector()
        fds = {}
        for j, proc in enumerate(self.procs):
            stdout = _pipe(proc.stdout)
            sel.register(stdout, selectors.EVENT_READ, j)
            fds[j] = stdout.fileno()
        windows: Dict[int, Dict[int, Dict[str, Tuple[int, Optional[float]]]]] = {}
        warmups: Dict[int, Dict[str, Any]] = {}
        results: Dict[int, Dict[str, Any]] = {}
        stopped = False
        try:
            while len(results) < self.count:
                ready = sel.select(max(0.0, deadline - time.monotonic()))
                if not ready:
                    raise WorkerError("the workers did not finish the point in time")
                for key, _ in ready:
                    j = key.data
                    message = _recv(fds[j])
                    if message is None:
                        raise WorkerError(f"worker {j} ended during the point (exit code "
                                          f"{self.procs[j].poll()})")
                    kind, body = message
                    if kind == "error":
                        raise WorkerError(f"worker {j} failed:\n{body}")
                    if kind == "warmup":
                        warmups[j] = body
                        if len(warmups) == self.count:
                            check = loadstats.self_check(mode, value, self.count,
                                                         list(warmups.values()))
                            if check.get("warning"):
                                log.warning("load self-check: %s", check["warning"])
                    elif kind == "window":
                        done, figures = body
                        windows.setdefault(done, {})[j] = figures
                        if (early_stop and not stopped and len(windows[done]) == self.count
                                and stable_windows <= done < max_windows
                                and self._stable(windows, done, stable_windows, percent)):
                            stopped = True
                            for proc in self.procs:
                                _send(proc.stdin, ("stop", done))
                    elif kind == "point":
                        results[j] = body
        finally:
            sel.close()
        return self._merge(results, warmups)

    def _stable(self, windows: Dict[int, Dict[int, Dict[str, Tuple[int, Optional[float]]]]],
                done: int, n: int, percent: float) -> bool:
        models: Set[str] = set()
        for w in windows[done].values():
            models.update(w)
        for model in models:
            series = []
            for d in range(done - n + 1, done + 1):
                parts = [w.get(model) for w in windows.get(d, {}).values()]
                ok = sum(p[0] for p in parts if p)
                total = sum(p[0] * p[1] for p in parts if p and p[1] is not None)
                series.append((ok, total / ok if ok else None))
            if not loadstats.is_stable(series, percent):
                return False
        return True

    def _merge(self, results: Dict[int, Dict[str, Any]],
               warmups: Dict[int, Dict[str, Any]]) -> Dict[str, Any]:
        docs = []
        cpu = 0.0
        connections = 0
        for j, body in sorted(results.items()):
            point = body["point"]
            cpu += body["cpu_s"]
            connections += body["connections"]
            if body.get("sample") is not None:
                self.samples.update(body["sample"])
            docs.append({"format": loadstats.RANK_FORMAT, "rank": j, "ranks": self.count,
                         "loads": [{"load_index": 0, "points": [dict(point, index=0)]}]})
        merged = loadstats.merge_rank_docs(docs)["loads"][0]["points"][0]
        out = {"windows_run": max(r["point"]["windows_run"] for r in results.values()),
               "stopped_early": any(r["point"]["stopped_early"] for r in results.values()),
               "late_s": max(float(r["point"].get("late_s") or 0.0)
                             for r in results.values()),
               "models": merged["models"], "warmups": [warmups.get(j) for j in
                                                       sorted(results)],
               "worker_cpu_s": round(cpu, 6), "worker_connections": connections,
               "per_worker": [{"cpu_s": round(results[j]["cpu_s"], 4),
                               "windows_run": results[j]["point"]["windows_run"],
                               "late_s": results[j]["point"].get("late_s")}
                              for j in sorted(results)]}
        self.connections = max(self.connections, connections)
        return out

    def close(self) -> None:
        for proc in self.procs:
            try:
                stdin = _pipe(proc.stdin)
                _send(stdin, ("quit", None))
                stdin.close()
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 5.0
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
        self.procs = []


# ---------------------------------------------------------------------- worker


def build_engines(config: Dict[str, Any], models: List[str]) -> Dict[str, Any]:
    """The engines of one process, one per model, from a picklable ``config``:
    ``{"protocol", "host", "port", "timeout_s", "headers", "tls": {ca, cert, key,
    verify} or None, "streaming", "connections", "max_connections", "decoupled":
    {model: {"token_output", "rule"}} for decoupled models}``."""
    from hpctriton_probe.load.grpc_engine import GrpcEngine
    from hpctriton_probe.net.h2 import client_ssl_context

    tls = config.get("tls")
    engines: Dict[str, Any] = {}
    for model in models:
        if config["protocol"] == "http":
            ctx = (loadgen.http_ssl_context(tls.get("ca"), tls.get("cert"), tls.get("key"),
                                            tls.get("verify", True)) if tls else None)
            engines[model] = loadgen.HttpEngine(
                config["host"], int(config["port"]), timeout_s=config["timeout_s"],
                ssl_context=ctx, max_connections=int(config.get("max_connections", 1024)))
        else:
            ctx = (client_ssl_context(tls.get("ca"), tls.get("cert"), tls.get("key"),
                                      tls.get("verify", True)) if tls else None)
            engines[model] = GrpcEngine(
                config["host"], int(config["port"]), timeout_s=config["timeout_s"],
                headers=config.get("headers"), ssl_context=ctx,
                streaming=bool(config.get("streaming")),
                connections=int(config.get("connections", 1)),
                decoupled=(config.get("decoupled") or {}).get(model))
    return engines


class _WorkerControl(loadgen.PointControl):
    def __init__(self, out: Any) -> None:
        super().__init__()
        self.out = out

    def warmup(self, figures: Dict[str, Any]) -> None:
        _send(self.out, ("warmup", figures))

    def window(self, done: int, recorders: Dict[str, Any]) -> None:
        figures = {}
        for model, rec in recorders.items():
            w = rec._window(done - 1)
            figures[model] = (w[0], w[2].mean())
        _send(self.out, ("window", (done, figures)))


def worker_main() -> int:
    """A worker process: messages on stdin, answers on stdout (see the module)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator decides; EOF ends us
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the message pipe
    fd = sys.stdin.buffer.fileno()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    control: Dict[str, Optional[_WorkerControl]] = {"now": None}
    inbox: asyncio.Queue = asyncio.Queue()

    def reader() -> None:
        while True:
            try:
                message = _recv(fd)
            except Exception:  # noqa: BLE001 - a broken pipe ends the worker
                message = None
            if message is not None and message[0] == "stop":
                current = control["now"]
                if current is not None:
                    loop.call_soon_threadsafe(current.stop, message[1])
                continue
            loop.call_soon_threadsafe(inbox.put_nowait, message)
            if message is None or message[0] == "quit":
                return

    threading.Thread(target=reader, daemon=True).start()

    async def main() -> None:
        message = await inbox.get()
        if message is None or message[0] != "init":
            return
        init = message[1]
        targets = [loadgen.Target(*target) for target in init["targets"]]
        engines = build_engines(init["config"], [t.model for t in targets])
        for engine in engines.values():
            engine.capture = bool(init.get("capture"))
            await engine.warm()
        _send(out, ("ready", os.getpid()))
        try:
            while True:
                message = await inbox.get()
                if message is None or message[0] == "quit":
                    return
                args = dict(message[1])
                epoch = args.pop("start_epoch")
                args["start"] = time.perf_counter() + (epoch - time.time())
                plan = loadgen.PointPlan(**args)
                ctl = control["now"] = _WorkerControl(out)
                cpu0 = loadgen.cpu_s()
                point = await loadgen.run_point(plan, targets, engines, ctl)
                control["now"] = None
                sample = {m: e.sample for m, e in engines.items() if e.sample is not None}
                for engine in engines.values():
                    engine.sample = None
                _send(out, ("point", {"point": point, "cpu_s": loadgen.cpu_s() - cpu0,
                                      "connections": sum(e.connections()
                                                         for e in engines.values()),
                                      "sample": sample or None}))
        finally:
            for engine in engines.values():
                with contextlib.suppress(Exception):  # closing must not hide the cause
                    await engine.close()

    try:
        loop.run_until_complete(main())
    except BaseException:  # noqa: BLE001 - tell the coordinator, then end
        with contextlib.suppress(OSError, ValueError):
            _send(out, ("error", traceback.format_exc(limit=8)))
        return 1
    finally:
        loop.close()
    return 0

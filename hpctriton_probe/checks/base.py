"""What every check shares: its declaration, the context it runs in, result entries.

A check module declares itself as ``CHECK``: its name (the module's own), its options
(``spec.CHECK_OPTIONS[name]``), when it runs (``phase``), a hook run once before any
check of the task starts (``before_all``) and how many of the probes a job launched
take part (``ranks``). The runner reads nothing else, so no list outside the check's
own module says where a check goes::

    CHECK = Check("statistics", StatisticsOptions, run, phase=Phase.LAST,
                  before_all=take_snapshot)
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, Mapping, Optional, Tuple

from hpctriton_probe.net import prom
from hpctriton_probe.net.answers import normalize_metadata, summarize_config
from hpctriton_probe.net.calls import Caller, CallFailure
from hpctriton_probe.net.clients import Clients
from hpctriton_probe.spec import MetricsOptions, TaskSpec

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry, Status


class Phase(enum.IntEnum):
    """When a check runs among its task's checks; within a phase, in the spec's order."""

    #: Run by several probes of one job on one wall-clock schedule (a load from several
    #: tasks): first, so that no other check makes rank 0 late against the others.
    SHARED_SCHEDULE = 0
    MAIN = 1
    #: After every other check, because it measures what they did (statistics).
    LAST = 2


@dataclass(frozen=True)
class Launch:
    """This probe among the copies its job started (``srun --ntasks``): its rank, how
    many were started, and when work on their common schedule starts (epoch seconds)."""

    rank: int = 0
    ranks: int = 1
    start_at: Optional[float] = None


#: A probe its job started alone (no copies under ``srun``).
ALONE = Launch()


def rank_zero_only(options: Any, launched: int) -> int:
    """The ``ranks`` of most checks: only rank 0 runs them."""
    return 1


def protocol_endpoints(options: Any) -> Tuple[str, ...]:
    """The ``endpoints`` of most checks: the options' ``protocols`` (or ``protocol``)."""
    protocols = getattr(options, "protocols", None)
    if protocols is None:
        protocol = getattr(options, "protocol", None)
        return (protocol,) if protocol else ()
    return tuple(protocols)


@dataclass(frozen=True)
class Check:
    """A check as its module declares it (``CHECK``)."""

    name: str
    #: The options dataclass, ``spec.CHECK_OPTIONS[name]``.
    options: type
    run: Callable[[CheckContext], Iterator[ResultEntry]]
    phase: Phase = Phase.MAIN
    #: Called once before any check of the task runs (the statistics' "before"
    #: snapshot); what it learns goes into ``ctx.shared``.
    before_all: Optional[Callable[[CheckContext], None]] = None
    #: How many of the launched probes run this check, given its options and how many
    #: the job launched; ranks 1.. run only checks that take them.
    ranks: Callable[[Any, int], int] = rank_zero_only
    #: The server's endpoints the check calls, given its options: ``http``, ``grpc``,
    #: ``metrics`` (the runner's first contact asks them all before the checks).
    endpoints: Callable[[Any], Tuple[str, ...]] = protocol_endpoints

    def phase_for(self, options: Any, launched: int) -> Phase:
        """``SHARED_SCHEDULE`` when several probes run the check, else its own phase."""
        if self.ranks(options, launched) > 1:
            return Phase.SHARED_SCHEDULE
        return self.phase


class CheckContext:
    """What one check needs: its options and timeout, the task, clients, the caller,
    where results go and where this probe stands among those of its job."""

    def __init__(self, name: str, options: Any, task: TaskSpec, clients: Clients,
                 caller: Caller, *, base_dir: str = ".",
                 shared: Optional[Dict[str, Any]] = None, run_id: str = "",
                 out_dir: Optional[str] = None, launch: Launch = ALONE) -> None:
        self.name = name
        self.options = options
        self.task = task
        self.server = task.server
        self.models = list(task.models)
        self.clients = clients
        self.caller = caller
        self.base_dir = base_dir
        self.run_id = run_id
        #: The task's results folder (None when nothing is written: ``hpctriton check``).
        self.out_dir = out_dir
        self.launch = launch
        self.timeout_s = float(getattr(options, "timeout_s", None) or task.probe.timeout_s)
        #: Data the checks of one task leave for each other (the statistics snapshot,
        #: the load's rank document); each check owns its keys.
        self.shared: Dict[str, Any] = shared if shared is not None else {}

    # --------------------------------------------------------------------- entries
    def entry(self, protocol: Optional[str], model: Optional[str], status: Status,
              message: str, details: Optional[Mapping[str, Any]] = None,
              started: Optional[float] = None) -> ResultEntry:
        duration = 0.0 if started is None else time.monotonic() - started
        return {"check": self.name, "protocol": protocol, "model": model, "status": status,
                "duration_s": round(duration, 4), "message": message,
                "details": dict(details) if details is not None else {}}

    def failure_entry(self, protocol: Optional[str], model: Optional[str],
                      failure: CallFailure, started: float,
                      details: Optional[Mapping[str, Any]] = None) -> ResultEntry:
        merged = dict(details or {})
        merged.update(failure.details())
        return self.entry(protocol, model, failure.status, failure.message, merged, started)

    def protocols(self) -> Iterator[Tuple[str, Optional[str]]]:
        """``(protocol, skip_reason)`` for each protocol of the check's options; the
        reason is set when the server has no port for that protocol."""
        for protocol in self.options.protocols:
            if self.server.url(protocol) is None:
                yield protocol, f"no server.{protocol}_port configured"
            else:
                yield protocol, None

    # ----------------------------------------------------------------------- calls
    def endpoint(self, protocol: str) -> str:
        return f"{protocol}://{self.server.url(protocol)}"

    def call(self, protocol: str, method: str, *args: Any, what: str,
             track_silence: bool = True, timeout_s: Optional[float] = None,
             **kwargs: Any) -> Any:
        """``client.method(*args, **kwargs)`` with headers, timeout and retries.

        An endpoint that did not answer in time earlier in the run fails at once. With
        ``track_silence`` (off for calls that may take long for good reasons: an
        inference), a timeout makes the endpoint silent for the rest of the run, so
        later calls, in this check and the others, fail at once instead of waiting out
        the timeout again (``Caller``).
        """
        endpoint = self.endpoint(protocol)
        timeout = self.timeout_s if timeout_s is None else timeout_s
        self.caller.raise_if_silent(endpoint)
        headers = self.clients.headers_for(protocol)

        def make() -> Callable[[], Any]:
            client = self.clients.get(protocol, timeout)
            bound = getattr(client, method)
            extra = dict(kwargs)
            if headers:
                extra["headers"] = headers
            if protocol == "grpc":
                extra["client_timeout"] = timeout
            return lambda: bound(*args, **extra)

        try:
            fn = make()
        except CallFailure:
            raise
        except Exception as exc:  # noqa: BLE001 - making a client is the probe's side
            raise CallFailure("probe", f"cannot create the {protocol} client: "
                                       f"{type(exc).__name__}: {exc}") from exc
        try:
            return self.caller.call(endpoint, fn, what=what, timeout_s=timeout,
                                    reset=lambda: self.clients.reset(protocol),
                                    fn_factory=make, track_silence=track_silence)
        except CallFailure as failure:
            if protocol == "http" and failure.kind in ("timeout", "unreachable", "tls"):
                # A late answer on a pooled connection would be read as the answer to
                # the next request: start over with fresh connections.
                self.clients.reset("http")
            raise

    # --------------------------------------------------------------------- metrics
    def metrics_where(self) -> Tuple[str, str]:
        """The metrics page's URL and the endpoint its scrapes are made under. The path
        is the ``metrics`` check's ``path`` (this check's, or the task's ``metrics``
        check's when another check scrapes), else ``/metrics``."""
        options = self.options if self.name == "metrics" else next(
            (c.options for c in self.task.checks if c.name == "metrics"), None)
        path = str(getattr(options, "path", None) or MetricsOptions().path)
        path = path if path.startswith("/") else "/" + path
        where = self.server.url("metrics")
        return f"http://{where}{path}", f"metrics://{where}"

    def scrape_metrics(self, *, track_silence: bool = True) -> str:
        """The text of the server's Prometheus page: every scrape of every check goes
        here, so the header policy (``Clients.headers_for("metrics")``: none over plain
        HTTP when the server is reached over TLS), the path, the timeout and retries and
        silence of the endpoint (``Caller``) are the same for all. ``CallFailure`` on
        error; the caller must check that ``server.metrics_port`` is set."""
        url, endpoint = self.metrics_where()
        headers = self.clients.headers_for("metrics")
        text: str = self.caller.call(endpoint, lambda: prom.fetch(url, headers, self.timeout_s),
                                     what="metrics scrape", timeout_s=self.timeout_s,
                                     track_silence=track_silence)
        return text


def as_json(protocol: str) -> Dict[str, Any]:
    """Keyword arguments that make a gRPC client answer plain JSON, like the HTTP one."""
    return {"as_json": True} if protocol == "grpc" else {}


def model_info(ctx: CheckContext, protocol: str,
               model: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A model's normalized metadata and summarized config (``CallFailure`` on error):
    what the infer and load checks need before they build inputs."""
    meta = normalize_metadata(ctx.call(protocol, "get_model_metadata", model,
                                       what="model metadata", **as_json(protocol)))
    config = summarize_config(ctx.call(protocol, "get_model_config", model,
                                       what="model config", **as_json(protocol)))
    return meta, config

"""Keepalive: one gRPC channel with ``KeepAliveOptions``, several calls on it.

The calls go back to back by default (no waiting in the default suite) or are spread
evenly over ``period_s``, long enough for keepalive pings to matter (an ingress or
firewall that drops idle connections shows up here). The entry records the settings
used, every call's latency, the channel's connectivity states, and whether the channel
stayed healthy: every call answered and the channel never fell into
TRANSIENT_FAILURE or SHUTDOWN after it was first READY.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional

from hpctriton_probe.checks.base import Check, CheckContext
from hpctriton_probe.net.calls import CallFailure
from hpctriton_probe.net.clients import FeatureMissing
from hpctriton_probe.net.features import client_version
from hpctriton_probe.spec import KeepaliveOptions

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry

_BAD_STATES = ("TRANSIENT_FAILURE", "SHUTDOWN")


class _StateLog:
    """Connectivity states of a gRPC channel, in order (duplicates collapsed)."""

    def __init__(self) -> None:
        self.states: List[str] = []
        self.channel: Any = None

    def __call__(self, state: Any) -> None:
        name = getattr(state, "name", str(state))
        if not self.states or self.states[-1] != name:
            self.states.append(name)

    def watch(self, client: Any) -> None:
        # tritonclient keeps the channel private; without it we simply record no states.
        channel = getattr(client, "_channel", None)
        if channel is None or not hasattr(channel, "subscribe"):
            return
        try:
            channel.subscribe(self, try_to_connect=False)
            self.channel = channel
        except Exception:  # noqa: BLE001 - state tracking is a nicety, never a failure
            self.channel = None

    def stop(self) -> None:
        if self.channel is not None:
            with contextlib.suppress(Exception):  # see watch(): a nicety, never a failure
                self.channel.unsubscribe(self)
            self.channel = None

    def reconnects(self) -> int:
        """How often the channel left READY and came back (a dropped connection)."""
        seen = self.states[self.states.index("READY"):] if "READY" in self.states else []
        return max(0, seen.count("READY") - 1)

    def broke_after_ready(self) -> bool:
        if "READY" not in self.states:
            return False
        after = self.states[self.states.index("READY"):]
        return any(s in _BAD_STATES for s in after)


def run(ctx: CheckContext) -> Iterator[ResultEntry]:
    opts = ctx.options
    for protocol, skip in ctx.protocols():
        if skip:
            yield ctx.entry(protocol, None, "skip", skip)
            continue
        yield _keepalive(ctx, opts)


def _keepalive(ctx: CheckContext, opts: KeepaliveOptions) -> ResultEntry:
    started = time.monotonic()
    endpoint = ctx.endpoint("grpc")
    headers = ctx.clients.headers_for("grpc")
    timeout = ctx.timeout_s
    interval = opts.period_s / (opts.calls - 1) if opts.calls > 1 else 0.0
    states = _StateLog()
    holder: Dict[str, Any] = {}

    try:
        ctx.caller.raise_if_silent(endpoint)  # before a channel is made for nothing
    except CallFailure as silent:
        return ctx.failure_entry("grpc", None, silent, started)
    try:
        _, not_applied = ctx.clients.keepalive_settings(opts)
        client, settings = ctx.clients.grpc_keepalive(opts)
    except FeatureMissing as missing:
        return ctx.entry("grpc", None, "skip", f"{missing}: cannot set keepalive options",
                         {}, started)
    except Exception as exc:  # noqa: BLE001 - building the client is the probe's side
        return ctx.entry("grpc", None, "error",
                         f"cannot create the gRPC client: {type(exc).__name__}: {exc}",
                         {}, started)
    holder["client"] = client
    # Connectivity states are watched only when the calls are spread out: a watched
    # channel takes gRPC's poller (0.2 s ticks) to close, and calls made back to back
    # give the channel no time to change state anyway.
    watch = opts.period_s > 0 and opts.calls > 1
    if watch:
        states.watch(client)
    details: Dict[str, Any] = {
        "settings": settings, "calls": opts.calls, "period_s": opts.period_s,
        "interval_s": round(interval, 3), "latencies_ms": [], "succeeded": 0}
    if not_applied:
        # An older tritonclient without some KeepAliveOptions field: the check runs with
        # the others and names what it could not set (the "skipped part").
        details["settings_not_applied"] = not_applied

    def make() -> Any:
        # After a refusal, a fresh channel: the old one waits out its reconnect backoff.
        states.stop()
        fresh, _ = ctx.clients.grpc_keepalive(opts)
        holder["client"] = fresh
        if watch:
            states.watch(fresh)
        return lambda: fresh.is_server_live(headers=headers, client_timeout=timeout)

    failure: Optional[CallFailure] = None
    try:
        for i in range(opts.calls):
            if i and interval > 0:
                time.sleep(interval)
            current = holder["client"]

            def once(c: Any = current) -> Any:
                return c.is_server_live(headers=headers, client_timeout=timeout)

            t0 = time.monotonic()
            try:
                live = ctx.caller.call(
                    endpoint, once,
                    what=f"server live (call {i + 1} of {opts.calls})",
                    timeout_s=timeout, fn_factory=make if i == 0 else None)
            except CallFailure as exc:
                failure = exc
                details["failed_call"] = i + 1
                break
            details["latencies_ms"].append(round((time.monotonic() - t0) * 1000, 2))
            if not live:
                details["failed_call"] = i + 1
                break
            details["succeeded"] += 1
    finally:
        # Not closed here: closing a watched channel waits for gRPC's connectivity
        # poller (up to 0.2 s); Clients.close() closes it at the end of the run, when
        # the poller has usually stopped.
        states.stop()
    details["channel_states"] = states.states if watch else None
    details["reconnects"] = states.reconnects() if watch else None
    healthy = details["succeeded"] == opts.calls and not states.broke_after_ready()
    details["healthy"] = healthy
    if failure is not None:
        return ctx.failure_entry("grpc", None, failure, started, details)
    if healthy:
        return ctx.entry("grpc", None, "pass", "{} calls on one channel{}, channel healthy{}{}"
                         .format(opts.calls, f" over {opts.period_s:g} s"
                                 if opts.period_s else "",
                                 f" (reconnected {details['reconnects']} time(s))"
                                 if details["reconnects"] else "",
                                 "; not set (KeepAliveOptions of {} lacks them): {}".format(
                                     client_version(), ", ".join(not_applied))
                                 if not_applied else ""), details, started)
    if details["succeeded"] < opts.calls:
        return ctx.entry("grpc", None, "fail", "server not live at call {} of {}".format(
            details.get("failed_call"), opts.calls), details, started)
    return ctx.entry("grpc", None, "fail", "channel broke between calls ({})".format(
        " -> ".join(states.states)), details, started)


CHECK = Check("keepalive", KeepaliveOptions, run)

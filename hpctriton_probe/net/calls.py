"""One call to the server: timeout, retries for a server still starting, and what a
failure means.

* ``refused`` (nothing listens: the server is down or still starting) is retried with
  exponential backoff, ``probe.retries`` times; once an endpoint has refused through
  all retries it is not retried again in the same run, so a dead server fails in
  seconds rather than once per check.
* ``timeout`` (connected, no answer in time) fails at the check's timeout, and the
  endpoint is then *silent* for the rest of the run: every later call to it, in any
  check, fails at once ("not answering since the health check"), so a server that
  accepts connections and never answers costs one timeout in all. The runner's first
  contact (``net.contact``) finds silent endpoints before the checks, all at once; the
  first check that then calls one reports the timeout, the later ones that it is
  still not answering.
* ``server`` (the server answered with an error) fails with the server's own message.
* ``probe`` (anything unexpected on the client side) is an ``error``, not a ``fail``.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Tuple

if TYPE_CHECKING:
    from hpctriton_probe.schema import Status

log = logging.getLogger("hpctriton_probe")

#: Kinds of failure that say "the server answered wrongly or not at all".
SERVER_SIDE = ("refused", "timeout", "unreachable", "tls", "server")


class CallFailure(Exception):
    """A call failed; ``kind`` is one of refused, timeout, unreachable, tls, server, probe."""

    def __init__(self, kind: str, message: str, *, status_code: Optional[str] = None,
                 attempts: int = 1, elapsed_s: float = 0.0) -> None:
        text = (message or "").strip()
        # The message is one line (stdout, JUnit); a server's multi-line answer (a Python
        # model's traceback, say) is kept whole in the details.
        self.full_message = text if "\n" in text else None
        message = text.splitlines()[0] if text else kind
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status_code = status_code
        self.attempts = attempts
        self.elapsed_s = elapsed_s

    @property
    def status(self) -> Status:
        """The check status this failure gives: ``fail`` or ``error``."""
        return "fail" if self.kind in SERVER_SIDE else "error"

    def details(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {"failure": self.kind, "attempts": self.attempts}
        if self.status_code is not None:
            out["status_code"] = self.status_code
        if self.full_message is not None:
            out["server_message"] = self.full_message
        return out


def classify(exc: BaseException) -> Tuple[str, str, Optional[str]]:
    """``(kind, message, status_code)`` for an exception raised by a tritonclient call."""
    name = type(exc).__name__
    declared = getattr(exc, "failure_kind", None)
    if declared:
        return declared, str(exc), str(getattr(exc, "code", "")) or None
    if name == "InferenceServerException":
        get_status = getattr(exc, "status", None)
        get_message = getattr(exc, "message", None)
        status = get_status() if callable(get_status) else None
        message = get_message() if callable(get_message) else str(exc)
        status = str(status) if status is not None else None
        text = (message or "") + " " + str(getattr(exc, "debug_details", lambda: "")() or "")
        if status and status.endswith("UNAVAILABLE"):
            if "refused" in text.lower():
                return "refused", "connection refused", status
            if "ssl" in text.lower() or "handshake" in text.lower():
                return "tls", message, status
            return "unreachable", message, status
        if status and status.endswith("DEADLINE_EXCEEDED"):
            return "timeout", "no answer in time", status
        if status is None and "timed out" in (message or "").lower():
            return "timeout", "no answer in time", status
        return "server", message or str(exc), status
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused", None
    if isinstance(exc, (socket.timeout, TimeoutError)) or name == "Timeout":
        return "timeout", "no answer in time", None
    if isinstance(exc, ssl.SSLError) or "SSL" in name or "Certificate" in name:
        return "tls", f"TLS failed: {exc}", None
    if isinstance(exc, socket.gaierror):
        return "unreachable", f"cannot resolve the host name: {exc}", None
    if isinstance(exc, (ConnectionError, OSError)):
        return "unreachable", f"{name}: {exc}", None
    if name in ("HTTPParseError", "BadStatusLine", "RemoteDisconnected"):
        return "server", f"malformed answer: {exc}", None
    return "probe", f"{name}: {exc}", None


class Silence:
    """An endpoint that did not answer in time: to what, within what, and in which check
    (``""``: outside any check; None while nobody has reported it: found by the first
    contact, before the checks)."""

    def __init__(self, endpoint: str, what: str, timeout_s: float,
                 check: Optional[str], elapsed_s: float = 0.0) -> None:
        self.endpoint = endpoint
        self.what = what
        self.timeout_s = timeout_s
        self.check = check
        self.elapsed_s = elapsed_s

    @property
    def why(self) -> str:
        """``no answer to server live within 10 s``."""
        if self.what == Caller.FIRST_CONTACT:
            return f"no answer within {self.timeout_s:g} s at {self.what}"
        return f"no answer to {self.what} within {self.timeout_s:g} s"


class Caller:
    """Makes calls for one task: the retry policy and what the run learned so far.

    ``check`` is the check making calls now and ``in_hook`` whether they come from its
    ``before_all`` hook (the runner sets both): a silent endpoint found by the first
    contact is reported as a timeout by the first check that calls it, never by a hook.
    """

    def __init__(self, retries: int, backoff_s: float, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.retries = retries
        self.backoff_s = backoff_s
        self.sleep = sleep
        #: Endpoints that refused through all retries in this run (-> how many attempts):
        #: they are not retried again.
        self.refused: Dict[str, int] = {}
        #: Endpoints that did not answer in time in this run: not called again.
        self.silent: Dict[str, Silence] = {}
        self.check: Optional[str] = None
        self.in_hook = False

    def mark_silent(self, endpoint: str, timeout_s: float, elapsed_s: float = 0.0) -> None:
        """``endpoint`` did not answer within ``timeout_s`` at the first contact, before
        any check called it; the first check that calls it reports that."""
        self.silent.setdefault(endpoint, Silence(endpoint, self.FIRST_CONTACT, timeout_s,
                                                 None, elapsed_s))

    #: ``what`` of endpoints the first contact found silent.
    FIRST_CONTACT = "the first contact, before the checks"

    def raise_if_silent(self, endpoint: str) -> None:
        """``CallFailure`` (a timeout) when ``endpoint`` is silent: at once, untried."""
        silence = self.silent.get(endpoint)
        if silence is None:
            return
        if silence.check is None and not self.in_hook and self.check is not None:
            silence.check = self.check  # this check reports it; later ones say "since"
            raise CallFailure("timeout", f"no answer from {endpoint} within "
                              f"{silence.timeout_s:g} s (first contact, before the checks)",
                              attempts=1, elapsed_s=silence.elapsed_s)
        since = (f"since the {silence.check} check" if silence.check
                 else "since an earlier call" if silence.check == ""
                 else f"since {self.FIRST_CONTACT}")
        raise CallFailure("timeout", f"not tried: {endpoint} not answering {since} "
                                     f"({silence.why})", attempts=0)

    def call(self, endpoint: str, fn: Callable[[], Any], *, what: str,
             timeout_s: float, reset: Optional[Callable[[], Any]] = None,
             fn_factory: Optional[Callable[[], Callable[[], Any]]] = None,
             track_silence: bool = True) -> Any:
        """Run ``fn()``; retry while ``endpoint`` refuses connections.

        ``fn_factory`` (when given) builds a fresh ``fn`` for each retry after ``reset``
        has dropped the old client. An endpoint that is silent fails at once; with
        ``track_silence`` (not for calls that may take long for good reasons, like an
        inference), a timeout makes it silent for the rest of the run.
        """
        self.raise_if_silent(endpoint)
        attempts = 0
        delay = self.backoff_s
        start = time.monotonic()
        while True:
            attempts += 1
            try:
                result = fn()
                self.refused.pop(endpoint, None)
                return result
            except CallFailure:
                raise
            except Exception as exc:  # noqa: BLE001 - every client error is classified
                kind, message, status = classify(exc)
                elapsed = time.monotonic() - start
                can_retry = (kind == "refused" and endpoint not in self.refused
                             and attempts <= self.retries)
                log.debug("%s %s attempt %d: %s (%s)", endpoint, what, attempts, kind, exc)
                if can_retry:
                    self.sleep(delay)
                    delay *= 2
                    if reset is not None:
                        reset()
                    if fn_factory is not None:
                        fn = fn_factory()
                    continue
                if kind == "refused" and endpoint in self.refused and attempts == 1:
                    message = (f"connection refused by {endpoint} (not retried: it refused "
                               f"all {self.refused[endpoint]} attempts earlier in this run)")
                elif kind == "refused":
                    self.refused[endpoint] = attempts
                    message = "connection refused by {} ({} {} over {:.1f} s)".format(
                        endpoint, attempts, "attempt" if attempts == 1 else "attempts",
                        elapsed)
                elif kind == "timeout":
                    message = f"no answer from {endpoint} within {timeout_s:g} s ({what})"
                    if track_silence:
                        self.silent[endpoint] = Silence(endpoint, what, timeout_s,
                                                        self.check or "", elapsed)
                elif kind in ("unreachable", "tls"):
                    message = f"{endpoint} ({what}): {message}"
                raise CallFailure(kind, message, status_code=status, attempts=attempts,
                                  elapsed_s=elapsed) from exc

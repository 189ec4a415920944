"""What the installed tritonclient can do, asked of tritonclient itself.

Sites run the probe in images built years ago (tritonclient 2.30 on Python 3.8 is
common), so the probe adapts to the client it finds instead of crashing on it. Each
feature is detected from the installed code (a signature, a class, an import), never
from a version number: back-ports and odd builds then do the right thing too.

* **Per-call gRPC timeouts.** ``client_timeout`` on the gRPC client's methods other
  than ``infer`` is missing in older releases (2.30 has it on ``infer`` only; 2.51 has
  it everywhere). Without it a silent server would hang the probe, so
  :class:`GrpcDeadlines` gives the client that argument: it puts the deadline on the
  gRPC call itself (an interceptor), or, where the client's internals differ, waits
  for the call in a thread and gives up at the timeout.
* **KeepAliveOptions fields.** :func:`keepalive_fields` names the fields the installed
  class takes; the keepalive check leaves out the others and says so.
* **Datatypes.** :func:`datatype_problem` says why this tritonclient cannot encode a
  tensor type (BF16 is the one that came late); the infer check skips such a model
  with that reason.
* **The asyncio clients.** :func:`aio_problem` says why ``tritonclient.<protocol>.aio``
  cannot be used (it needs aiohttp / grpc.aio), for checks that want it.
* **Old generated protobuf code.** tritonclient before about 2.22 ships gRPC code
  generated for protobuf 3; under protobuf 4 and newer its import fails with
  "TypeError: Descriptors cannot be created directly". :func:`protobuf_problem` finds
  that; the probe then runs again with the pure-Python protobuf
  (``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``, see ``cli``), which reads such
  code, and says so (:func:`workarounds`).

Whatever the probe does differently from a plain run is noted with
:func:`note_workaround`; the runner copies the notes into ``results.json``
(``run.workarounds``) and probe.log has them too.

Standard library only at import time: tritonclient and grpc are imported inside the
functions that need them.
"""

from __future__ import annotations

import collections
import inspect
import logging
import os
import threading
from typing import Any, Callable, Dict, List, Optional

log = logging.getLogger("hpctriton_probe")

_WORKAROUNDS: List[str] = []

#: Set in the environment of a probe started again with the pure-Python protobuf; its
#: value says why (see :func:`protobuf_problem`).
PROTOBUF_RERUN = "HPCTRITON_PROBE_PROTOBUF_RERUN"
#: The error of protobuf 4+ on code generated for protobuf 3.
DESCRIPTORS_ERROR = "Descriptors cannot be created directly"


def note_workaround(text: str, level: int = logging.INFO) -> None:
    """Record something the probe does because of the installed versions (once)."""
    if text not in _WORKAROUNDS:
        _WORKAROUNDS.append(text)
        log.log(level, "%s", text)


def workarounds() -> List[str]:
    """What the probe does differently because of the installed versions, so far."""
    rerun = os.environ.get(PROTOBUF_RERUN)
    if rerun and rerun not in _WORKAROUNDS:
        note_workaround(rerun, logging.WARNING)
    return list(_WORKAROUNDS)


def protobuf_problem() -> Optional[str]:
    """Why ``tritonclient.grpc`` cannot be imported with this protobuf, when the cure is
    the pure-Python protobuf (old generated code under protobuf 4+); None otherwise
    (it imports, or fails for another reason that the checks report)."""
    try:
        import tritonclient.grpc  # noqa: F401 - importing is the question
    except TypeError as exc:
        if DESCRIPTORS_ERROR not in str(exc):
            return None
        import sys

        protobuf = getattr(sys.modules.get("google.protobuf"), "__version__", "?")
        return (f"{client_version()}'s generated gRPC code fails with protobuf {protobuf} "
                f"(TypeError: {DESCRIPTORS_ERROR}): the probe ran again with "
                "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (pure-Python protobuf, "
                "slower to encode and decode)")
    except Exception:  # noqa: BLE001 - any other import problem is reported by the checks
        return None
    return None


def repair_map_fields() -> bool:
    """Make old generated code's map fields maps again under the pure-Python protobuf.

    Code generated for protobuf 3 marks a map's entry type only in its serialized
    options (``map_entry``); protobuf 4+ in pure-Python mode reads the flag from the
    ``is_map_entry`` argument, which that code does not pass, so ``InferInput.parameters``
    becomes a list and tritonclient's ``parameters.pop(key, None)`` fails ("pop() takes
    from 1 to 2 positional arguments"). Wrapping ``Descriptor.__init__`` before
    tritonclient.grpc is imported sets the flag from the options. Only in the rerun
    with ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python``; returns whether installed.
    """
    try:
        from google.protobuf import descriptor
        from google.protobuf.internal import api_implementation
    except Exception:  # noqa: BLE001 - no protobuf: nothing to repair
        return False
    if api_implementation.Type() != "python" or getattr(descriptor.Descriptor, "_hpct", 0):
        return False
    original = descriptor.Descriptor.__init__

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        if getattr(self, "_is_map_entry", True):
            return
        try:
            if kwargs.get("serialized_options") == b"8\x01" or self.GetOptions().map_entry:
                self._is_map_entry = True
        except Exception:  # noqa: BLE001 - protobuf's own bootstrap descriptors
            pass

    descriptor.Descriptor.__init__ = init
    descriptor.Descriptor._hpct = 1
    return True


#: Fields of tritonclient.grpc.KeepAliveOptions the probe sets, in the probe's order.
KEEPALIVE_FIELDS = ("keepalive_time_ms", "keepalive_timeout_ms",
                    "keepalive_permit_without_calls", "http2_max_pings_without_data")


def client_version() -> str:
    """``tritonclient 2.30.0`` (or plain ``tritonclient``) for messages."""
    from hpctriton_probe.results import tritonclient_version

    version = tritonclient_version()
    return "tritonclient " + version if version else "this tritonclient"


def accepts(fn: Any, name: str) -> bool:
    """Whether callable ``fn`` takes a keyword argument ``name`` (``**kwargs`` counts)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD
                                 for p in params.values())


# ------------------------------------------------------------------- keepalive options


def keepalive_fields(module: Any) -> Optional[tuple]:
    """The ``KeepAliveOptions`` fields of ``module`` (tritonclient.grpc) the probe knows;
    None when the class itself is missing."""
    cls = getattr(module, "KeepAliveOptions", None)
    if cls is None:
        return None
    return tuple(f for f in KEEPALIVE_FIELDS if accepts(cls, f))


# ------------------------------------------------------------------------- datatypes


def datatype_problem(datatype: str) -> Optional[str]:
    """Why this tritonclient cannot encode/decode ``datatype`` tensors; None if it can.

    Older releases have no numpy type for BF16 (``triton_to_np_dtype`` gives None);
    newer ones map it to ``ml_dtypes.bfloat16``, which must then import.
    """
    if datatype == "BYTES":
        return None
    try:
        from tritonclient.utils import triton_to_np_dtype

        found = triton_to_np_dtype(datatype)
    except Exception as exc:  # noqa: BLE001 - any failure here means "cannot encode"
        return f"{client_version()} cannot map {datatype} to a numpy type ({exc})"
    if found is None:
        return f"{client_version()} has no numpy type for {datatype} tensors"
    return None


# ------------------------------------------------------------------- asyncio clients


def aio_problem(protocol: str) -> Optional[str]:
    """Why ``tritonclient.<protocol>.aio`` cannot be imported here; None if it can."""
    import importlib

    name = f"tritonclient.{protocol}.aio"
    try:
        importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - an old or partial install fails in many ways
        return f"{client_version()} has no usable {name} ({type(exc).__name__}: {exc})"
    return None


# ------------------------------------------------------------------ gRPC deadlines


class DeadlineExceeded(Exception):
    """A call did not finish within its timeout (the probe waited in a thread)."""

    #: Read by ``calls.classify``: this is a timeout, like gRPC's DEADLINE_EXCEEDED.
    failure_kind = "timeout"


def call_with_timeout(fn: Callable[[], Any], timeout_s: float) -> Any:
    """``fn()``, given up after ``timeout_s``: the call goes on in a daemon thread
    (closing the client at the end of the run cancels it; the probe exits with
    ``os._exit``, so a stuck thread never holds the job)."""
    box: Dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="hpctriton-deadline", daemon=True).start()
    if not done.wait(timeout_s):
        raise DeadlineExceeded(f"no answer within {timeout_s:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


_CallDetailsBase = collections.namedtuple(
    "_CallDetailsBase",
    ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression"))


def _deadline_interceptor(local: threading.local) -> Any:
    """A unary-unary interceptor that sets ``local.timeout`` as the call's deadline when
    the call has none (tritonclient passes none where it has no ``client_timeout``)."""
    import grpc

    class _Details(_CallDetailsBase, grpc.ClientCallDetails):
        pass

    class _Interceptor(grpc.UnaryUnaryClientInterceptor):
        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            timeout = getattr(local, "timeout", None)
            if timeout is not None and getattr(details, "timeout", None) is None:
                details = _Details(details.method, timeout, details.metadata,
                                   details.credentials,
                                   getattr(details, "wait_for_ready", None),
                                   getattr(details, "compression", None))
            return continuation(details, request)

    return _Interceptor()


class GrpcDeadlines:
    """A tritonclient gRPC client whose every method takes ``client_timeout``.

    Wraps clients of releases where only some methods take it (see the module
    docstring). Methods that take it already are passed through untouched; for the
    others the deadline is put on the gRPC call by an interceptor on the client's own
    channel (mode ``interceptor``: the server sees the deadline, and the error is the
    same DEADLINE_EXCEEDED a newer client raises), or, when the client's internals are
    not the expected ``_channel``/``_client_stub``, enforced by waiting in a thread
    (mode ``thread``).
    """

    def __init__(self, client: Any, *, mode: Optional[str] = None) -> None:
        self._client = client
        self._local = threading.local()
        self._native: Dict[str, bool] = {}
        self.mode = mode or self._install_interceptor()
        note_workaround(f"{client_version()}: gRPC calls other than infer take no "
                        f"client_timeout; the probe sets their deadlines itself ({self.mode})")

    @staticmethod
    def needed(client: Any) -> bool:
        """Whether ``client`` lacks ``client_timeout`` on a method the probe calls."""
        return not all(accepts(getattr(client, name, None), "client_timeout")
                       for name in ("is_server_live", "get_model_metadata"))

    def _install_interceptor(self) -> str:
        channel = getattr(self._client, "_channel", None)
        stub = getattr(self._client, "_client_stub", None)
        if channel is None or stub is None:
            return "thread"
        try:
            import grpc

            intercepted = grpc.intercept_channel(channel, _deadline_interceptor(self._local))
            self._client._client_stub = type(stub)(intercepted)
        except Exception as exc:  # noqa: BLE001 - fall back to the thread, never fail
            log.debug("cannot intercept the gRPC channel: %s", exc)
            return "thread"
        return "interceptor"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr
        native = self._native.get(name)
        if native is None:
            native = self._native[name] = accepts(attr, "client_timeout")
        if native:
            return attr

        def call(*args: Any, client_timeout: Optional[float] = None, **kwargs: Any) -> Any:
            if client_timeout is None:
                return attr(*args, **kwargs)
            if self.mode == "thread":
                return call_with_timeout(lambda: attr(*args, **kwargs), client_timeout)
            self._local.timeout = client_timeout
            try:
                return attr(*args, **kwargs)
            finally:
                self._local.timeout = None

        call.__name__ = name
        return call

    def __repr__(self) -> str:
        return f"GrpcDeadlines({self._client!r}, mode={self.mode})"

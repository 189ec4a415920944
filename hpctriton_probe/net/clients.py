"""tritonclient HTTP and gRPC clients for one server: TLS, headers, timeouts.

tritonclient is imported here, lazily: the probe must start without it to print an
install hint, and ``tritonclient.grpc`` alone takes about half a second to import.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
from typing import Any, Dict, List, Mapping, Optional

from hpctriton_probe.net import features
from hpctriton_probe.spec import KeepaliveOptions, ServerSpec, SpecError

log = logging.getLogger("hpctriton_probe")

INSTALL_HINT = "pip install 'tritonclient[http,grpc]'"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ProbeDependencyError(RuntimeError):
    """tritonclient (or numpy) is not importable: exit code 2, with the fix."""


class FeatureMissing(RuntimeError):
    """The installed tritonclient lacks what a check needs: that part is skipped,
    with this message as the reason."""


def require_tritonclient() -> None:
    """Fail early, with the fix, when tritonclient or numpy cannot be imported."""
    for name, what in (("tritonclient", "tritonclient"), ("numpy", "numpy")):
        if importlib.util.find_spec(name) is None:
            import sys

            raise ProbeDependencyError(
                f"{what} is not installed for {sys.executable} (Python "
                f"{sys.version_info[0]}.{sys.version_info[1]}); install it with: {INSTALL_HINT}")


def import_client(protocol: str) -> Any:
    """``tritonclient.http`` or ``tritonclient.grpc``, with the fix when missing."""
    try:
        if protocol == "http":
            import tritonclient.http as module
        else:
            import tritonclient.grpc as module
    except ImportError as exc:
        raise ProbeDependencyError(f"cannot import tritonclient.{protocol} ({exc}); install "
                                   f"it with: {INSTALL_HINT}") from exc
    return module


def expand_headers(headers: Mapping[str, str],
                   environ: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """``${VAR}`` in header values from the environment; a missing variable is an error
    (sending ``Bearer `` with an empty token would only confuse the server's answer).

    White space around a value is not part of it (RFC 9110) and is removed: a token
    read from a file usually ends with a line break. A line break or another control
    character inside a value is an error, and so is any character beyond ASCII (RFC 9110
    field values: visible ASCII, space and tab; the config refuses the same before).
    Messages name the header, never its value (nor the variable's): values are secrets
    (``redact``)."""
    env = os.environ if environ is None else environ
    out = {}
    for key, value in headers.items():
        missing = [m.group(1) for m in _VAR.finditer(value) if m.group(1) not in env]
        if missing:
            raise SpecError("server.headers.{}: environment variable {} is not set".format(
                key, ", ".join(missing)))
        expanded = _VAR.sub(lambda m: env[m.group(1)], value)
        stripped = expanded.strip(" \t\r\n")
        if stripped != expanded:
            log.warning("server.headers.%s: white space (a line break?) around its value "
                        "was removed", key)
        bad = [c for c in stripped if (ord(c) < 32 and c != "\t") or ord(c) == 127]
        if bad:
            raise SpecError(f"server.headers.{key}: its value holds a control character "
                            f"(U+{ord(bad[0]):04X}: a line break?), which no HTTP or gRPC "
                            "header can carry")
        if any(ord(c) > 126 for c in stripped):
            # which character is not said: it is part of a secret
            raise SpecError(f"server.headers.{key}: its value holds a character beyond "
                            "ASCII, which no HTTP or gRPC header can carry (only visible "
                            "ASCII, space and tab)")
        out[key] = stripped
    return out


def _resolve(path: Optional[str], base_dir: str) -> Optional[str]:
    if path is None:
        return None
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(base_dir, path)


class Clients:
    """Creates and caches the clients of one task's server.

    HTTP timeouts are fixed when a tritonclient HTTP client is made, so there is one
    client per timeout; gRPC takes a timeout per call, so one client serves all
    checks (keepalive checks get their own channel).
    """

    def __init__(self, server: ServerSpec, *, base_dir: str = ".",
                 headers: Optional[Mapping[str, str]] = None) -> None:
        self.server = server
        self.base_dir = base_dir
        self.headers = dict(headers or {})
        tls = server.tls
        self.tls = tls
        self.ca = _resolve(tls.ca, base_dir) if tls else None
        self.cert = _resolve(tls.cert, base_dir) if tls else None
        self.key = _resolve(tls.key, base_dir) if tls else None
        self._http: Dict[float, Any] = {}
        self._grpc: Any = None
        self._extra: List[Any] = []

    # ------------------------------------------------------------------ descriptions
    def url(self, protocol: str) -> Optional[str]:
        return self.server.url(protocol)

    def headers_for(self, protocol: str) -> Optional[Dict[str, str]]:
        """The headers to send to ``protocol``'s endpoint (``http``, ``grpc`` or
        ``metrics``): gRPC metadata keys must be lower case; HTTP headers are sent as
        given. Triton's metrics port speaks plain HTTP only: where the server is reached
        over TLS, its headers (tokens) are not sent there in clear text."""
        if not self.headers or (protocol == "metrics" and self.tls is not None):
            return None
        if protocol == "grpc":
            return {k.lower(): v for k, v in self.headers.items()}
        return dict(self.headers)

    def tls_details(self) -> dict:
        if not self.tls:
            return {"tls": False}
        return {"tls": True, "ca": self.ca, "client_cert": self.cert is not None,
                "verify": self.tls.verify}

    def check_tls_files(self) -> None:
        """TLS files named in the spec must exist: a clear ``error`` beats an SSL trace."""
        for what, path in (("ca", self.ca), ("cert", self.cert), ("key", self.key)):
            if path is not None and not os.path.isfile(path):
                raise FileNotFoundError(f"server.tls.{what}: file {path} does not exist")

    # ----------------------------------------------------------------------- HTTP
    def _ssl_context_factory(self) -> Any:
        """An SSLContext factory for geventhttpclient, old and new.

        Newer geventhttpclient calls it with ``cafile=`` and then sets
        ``check_hostname`` from ``insecure``; older ones call it without arguments and
        check the host name themselves after connecting unless ``insecure``.
        """
        import gevent.ssl

        assert self.tls is not None
        ca, cert, key, verify = self.ca, self.cert, self.key, self.tls.verify

        def factory(*args: Any, **kwargs: Any) -> Any:
            cafile = ca or kwargs.get("cafile")
            ctx = gevent.ssl.create_default_context(cafile=cafile)
            ctx.check_hostname = False
            ctx.verify_mode = gevent.ssl.CERT_REQUIRED if verify else gevent.ssl.CERT_NONE
            if cert and key:
                ctx.load_cert_chain(certfile=cert, keyfile=key)
            return ctx

        return factory

    def http(self, timeout_s: float) -> Any:
        """A tritonclient HTTP client whose connect and network timeouts are ``timeout_s``."""
        client = self._http.get(timeout_s)
        if client is not None:
            return client
        module = import_client("http")
        kwargs = {"connection_timeout": timeout_s, "network_timeout": timeout_s}
        if self.tls:
            self.check_tls_files()
            kwargs.update(ssl=True, ssl_context_factory=self._ssl_context_factory())
            if _accepts(module.InferenceServerClient, "insecure"):  # 2.30+ have it; checked anyway
                kwargs["insecure"] = not self.tls.verify
        client = module.InferenceServerClient(self.url("http"), **kwargs)
        self._http[timeout_s] = client
        return client

    # ----------------------------------------------------------------------- gRPC
    def _grpc_kwargs(self) -> dict:
        if not self.tls:
            return {}
        self.check_tls_files()
        if not self.tls.verify:
            log.warning("server.tls.verify is false: gRPC cannot skip certificate "
                        "verification; give server.tls.ca instead")
        return {"ssl": True, "root_certificates": self.ca, "private_key": self.key,
                "certificate_chain": self.cert}

    def grpc(self) -> Any:
        """The shared gRPC client (tritonclient's default keepalive settings).

        Every method takes ``client_timeout``, whatever the tritonclient release
        (see ``features.GrpcDeadlines``)."""
        if self._grpc is None:
            module = import_client("grpc")
            self._grpc = _with_deadlines(
                module.InferenceServerClient(self.url("grpc"), **self._grpc_kwargs()))
        return self._grpc

    def keepalive_settings(self, opts: KeepaliveOptions) -> tuple:
        """``(settings, not_applied)``: the ``KeepAliveOptions`` values for ``opts`` that
        the installed tritonclient takes, and ``{field: reason}`` for those it does not.

        Raises ``FeatureMissing`` when tritonclient has no ``KeepAliveOptions`` at all.
        """
        module = import_client("grpc")
        wanted = {
            "keepalive_time_ms": int(round(opts.keepalive_time_s * 1000)),
            "keepalive_timeout_ms": int(round(opts.keepalive_timeout_s * 1000)),
            "keepalive_permit_without_calls": bool(opts.permit_without_calls),
            "http2_max_pings_without_data": int(opts.max_pings_without_data),
        }
        fields = features.keepalive_fields(module)
        if fields is None:
            raise FeatureMissing(f"{features.client_version()} has no "
                                 "tritonclient.grpc.KeepAliveOptions")
        settings = {k: v for k, v in wanted.items() if k in fields}
        not_applied = {k: f"KeepAliveOptions of {features.client_version()} has no {k}"
                       for k in wanted if k not in fields}
        return settings, not_applied

    def grpc_keepalive(self, opts: KeepaliveOptions) -> tuple:
        """A new gRPC client with ``KeepAliveOptions`` from ``opts``; returns
        ``(client, settings)`` where settings are the values actually used (fields the
        installed tritonclient lacks are left out: see ``keepalive_settings``)."""
        module = import_client("grpc")
        settings, _ = self.keepalive_settings(opts)
        keepalive = module.KeepAliveOptions(**settings)
        client = _with_deadlines(module.InferenceServerClient(
            self.url("grpc"), keepalive_options=keepalive, **self._grpc_kwargs()))
        self._extra.append(client)
        return client, settings

    # ------------------------------------------------------------------- lifecycle
    def get(self, protocol: str, timeout_s: float) -> Any:
        return self.http(timeout_s) if protocol == "http" else self.grpc()

    def reset(self, protocol: str) -> None:
        """Forget a protocol's clients, so the next call starts a fresh connection
        (a gRPC channel that saw a refusal waits out its reconnect backoff)."""
        if protocol == "http":
            old, self._http = list(self._http.values()), {}
        else:
            old, self._grpc = [self._grpc] if self._grpc is not None else [], None
        for client in old:
            _close_quietly(client)

    def close(self) -> None:
        for client in list(self._http.values()) + [self._grpc] + self._extra:
            if client is not None:
                _close_quietly(client)
        self._http, self._grpc, self._extra = {}, None, []


def _with_deadlines(client: Any) -> Any:
    """``client``, wrapped where its methods lack ``client_timeout`` (older releases)."""
    return features.GrpcDeadlines(client) if features.GrpcDeadlines.needed(client) else client


def _accepts(cls: Any, name: str) -> bool:
    import inspect

    try:
        return name in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return False


def _close_quietly(client: Any) -> None:
    try:
        client.close()
    except Exception as exc:  # noqa: BLE001 - closing must never fail a check
        log.debug("closing %r: %s", client, exc)

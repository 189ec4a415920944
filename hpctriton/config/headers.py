"""Request headers of ``server.headers``: which values are secrets, and keeping them out
of files and messages.

The one place that decides what looks like a secret. A value written as ``${VAR}`` is
expanded inside the job from its environment and never stored; anything else is
written into spec.json, so a literal token there gets a warning (``render``), and no
message of hpctriton ever shows a header's value, only its name.

Example::

    >>> literal_secret_headers({"Authorization": "Bearer abc123def456ghi789",
    ...                         "x-trace": "on", "x-key": "${KEY}"})
    ['Authorization']
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_VAR = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")
#: Header names whose every literal value is a credential.
_SECRET_NAMES = re.compile(
    r"authorization|cookie|token|secret|passw|api[-_]?key|(^|[-_])key$|"
    r"^triton-grpc-protocol-", re.IGNORECASE)
#: A credential scheme word at the start of a value: ``Bearer``, ``Basic``, ``Token``…
_SCHEME = re.compile(r"^\s*(bearer|basic|token|digest|apikey)\b", re.IGNORECASE)
#: A run of token characters long enough to be a key (JWTs, hex and base64 keys).
_TOKENISH = re.compile(r"[A-Za-z0-9+/=_.~-]{16,}")


def _looks_like_token(text: str) -> bool:
    for run in _TOKENISH.findall(text):
        kinds = sum(bool(re.search(p, run)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
        if kinds >= 2:
            return True
    return False


def literal_secret_headers(headers: Mapping[str, str]) -> list[str]:
    """Names of the headers whose value holds a literal (not ``${VAR}``) secret: any
    literal text in a credential header (``Authorization``, ``*-key``, ``*token*``,
    Triton's ``triton-grpc-protocol-*``…), literal text after a credential scheme, or
    a literal run of token characters. ``Bearer ${TOKEN}`` holds none."""
    out = []
    for name, value in headers.items():
        literal = _VAR.sub("", str(value)).strip()
        secret_part = _SCHEME.sub("", literal).strip()
        if not secret_part:
            continue
        if (_SECRET_NAMES.search(name) or _SCHEME.match(literal)
                or _looks_like_token(secret_part)):
            out.append(name)
    return out


#: What a header value is shown as, wherever a message would show it.
HIDDEN = "<hidden>"


#: What a header value may hold (RFC 9110 field-value, without obs-text): visible ASCII,
#: space and tab. Anything else (a line break, ``é``) no HTTP/1.1 or gRPC client sends;
#: they refuse it with an error that quotes the value.
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")


def is_header_field_value(text: str) -> bool:
    """Whether ``text`` may be sent as a header's value: visible ASCII, space and tab
    only (``${VAR}`` counts as the text it is; the probe checks again after expanding).

    >>> is_header_field_value("Bearer ${TOKEN}"), is_header_field_value("ab\u00e9")
    (True, False)
    """
    return _FIELD_VALUE.fullmatch(text) is not None


def is_header_value(path: Sequence[Any]) -> bool:
    """Whether a config field path names a header value (or the headers themselves):
    ``("server", "headers", "Authorization")``, in the file, in a sweep key, or in the
    values of a sweep (``("sweep", "server.headers.Authorization", 0)``)."""
    parts = [str(p) for p in path]
    for i in range(len(parts) - 1):
        if parts[i] == "server" and parts[i + 1] == "headers":
            return True
    if len(parts) > 1 and parts[0] == "sweep":
        parts = parts[1:]
    return bool(parts) and (parts[0] == "server.headers"
                            or parts[0].startswith("server.headers."))


def holds_header_value(path: Sequence[Any], value: Any) -> bool:
    """Whether ``value``, set at ``path`` (a ``--set`` key), holds a header's value
    anywhere: ``server.headers.X=…``, ``server={headers: …}``, a sweep over a header."""
    if is_header_value(path) or any(str(p).startswith("server.headers") for p in path):
        return True
    if isinstance(value, Mapping):
        return any(holds_header_value((*path, k), v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_header_value((*path, i), v) for i, v in enumerate(value))
    return False

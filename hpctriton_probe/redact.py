"""Header values never appear in what the probe writes: messages, results, logs.

The runner registers every header value once it is expanded (:func:`hide`); entries
(messages and details), log records and crash reports pass through :func:`redact`,
which replaces each value (whole, in its ``repr`` forms, and each long word of it)
with ``<hidden>``. This is the second line of defence: the first is never putting a
value into a message (``net.clients.expand_headers`` names headers, never values).

Standard library only; importable by every layer of the probe.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Iterable, List

HIDDEN = "<hidden>"
#: Values shorter than this are not looked for (``on``, ``gzip``: hiding them would
#: garble ordinary text, and they are no secrets).
MIN_VALUE = 6
#: Words of a value at least this long are hidden on their own too (the token of
#: ``Bearer <token>``); shorter ones (``Bearer``) would hide ordinary text.
MIN_WORD = 8

_lock = threading.Lock()
_secrets: List[str] = []


def hide(values: Iterable[str]) -> None:
    """Register secret values (header values, after ``${VAR}`` expansion)."""
    found = set()
    for value in values:
        if not value:
            continue
        for form in (value, value.strip(), repr(value)[1:-1],
                     repr(value.encode("utf-8", "backslashreplace"))[2:-1]):
            if len(form) >= MIN_VALUE:
                found.add(form)
        found.update(word for word in value.split() if len(word) >= MIN_WORD)
    with _lock:
        merged = set(_secrets) | found
        # longest first, so a whole value goes before the words inside it
        _secrets[:] = sorted(merged, key=len, reverse=True)


def forget() -> None:
    """Clear the registered values (tests; one probe process runs one task)."""
    with _lock:
        del _secrets[:]


def redact(text: str) -> str:
    """``text`` with every registered value replaced by ``<hidden>``."""
    if not _secrets or not isinstance(text, str):
        return text
    for secret in list(_secrets):
        if secret in text:
            text = text.replace(secret, HIDDEN)
    return text


def redact_data(data: Any) -> Any:
    """``data`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if not _secrets:
        return data
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact(k) if isinstance(k, str) else k: redact_data(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(redact_data(v) for v in data)
    return data


class RedactingFilter(logging.Filter):
    """A logging filter that redacts a record's message and traceback in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = redact(record.getMessage())
        if record.exc_info:
            # the traceback's text, redacted, becomes part of the message
            message += "\n" + redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = message, None
        return True


_FILTER = RedactingFilter()


def install(logger: logging.Logger) -> None:
    """Redact every record of ``logger`` (idempotent)."""
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)

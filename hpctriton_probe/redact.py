"""Header values never appear in what the probe writes: messages, results, logs.

The runner registers every header value once it is expanded (:func:`hide`); entries
(messages and details), log records and crash reports pass through :func:`redact`,
which replaces each value (whole, in its ``repr`` forms, and each long word of it)
with ``<hidden>``. This is the second line of defence: the first is never putting a
value into a message (``net.clients.expand_headers`` names headers, never values, and
refuses values no client library would send, whose errors would quote them).

What is looked for, and why (hiding a short value everywhere would garble ordinary
text: a header ``x-debug: 1`` would hide every ``1`` of every message):

* where a client library's error quotes a header's value (``invalid value for header
  field 'X': '…'``, ``Invalid header value b'…'``, ``can't encode character '…'``:
  :data:`_QUOTED_VALUE`), the quoted text is hidden whatever its length, registered
  or not: there it is known to be a value;
* registered values (and their ``repr`` forms) of :data:`MIN_VALUE` characters or
  more are hidden everywhere; below :data:`MIN_ANYWHERE` characters only where they
  stand alone, not inside a longer run of letters and digits (``gzip`` is hidden in
  ``'gzip'``, not in ``gzipped``);
* words of a value of :data:`MIN_WORD` characters or more are hidden on their own
  (the token of ``Bearer <token>``); shorter ones (``Bearer``) would hide ordinary
  text.

Values shorter than :data:`MIN_VALUE` (``on``, ``1``) are hidden only in the quoted
errors above: anywhere else they would hide ordinary words, and they are no secrets.

Standard library only; importable by every layer of the probe.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Iterable, List, Optional, Pattern

HIDDEN = "<hidden>"
#: Registered values (and forms) shorter than this are not looked for on their own.
MIN_VALUE = 4
#: Values shorter than this are hidden only where they stand alone (no letter or digit
#: right before or after them); longer ones anywhere.
MIN_ANYWHERE = 6
#: Words of a value at least this long are hidden on their own too (the token of
#: ``Bearer <token>``); shorter ones (``Bearer``) would hide ordinary text.
MIN_WORD = 8

#: A Python ``repr`` of a str or bytes: what client libraries quote values as.
_REPR = r"""b?(?:'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")"""
#: The errors of client libraries that quote a header's value, the value the group
#: ``value``: geventhttpclient (``invalid value for header field 'X': '…'``), http.client
#: (``Invalid header value b'…'``), a codec (``can't encode character '\u2603'``).
_QUOTED_VALUE = re.compile(
    r"(?P<lead>(?:invalid value for header field\s*" + _REPR + r"\s*:"
    r"|invalid header value|can't encode character)\s*)(?P<value>" + _REPR + ")",
    re.IGNORECASE)

_lock = threading.Lock()
_secrets: List[str] = []
#: One pattern for every registered form, longest first (None: nothing registered).
_pattern: Optional[Pattern[str]] = None
#: Whether any header value was registered (even one too short to look for).
_active = False


def _form_pattern(form: str) -> str:
    if len(form) >= MIN_ANYWHERE:
        return re.escape(form)
    return r"(?<![A-Za-z0-9])" + re.escape(form) + r"(?![A-Za-z0-9])"


def hide(values: Iterable[str]) -> None:
    """Register secret values (header values, after ``${VAR}`` expansion)."""
    global _pattern, _active
    found = set()
    some = False
    for value in values:
        if not value:
            continue
        some = True
        for form in (value, value.strip(), repr(value)[1:-1],
                     repr(value.encode("utf-8", "backslashreplace"))[2:-1]):
            if len(form) >= MIN_VALUE:
                found.add(form)
        found.update(word for word in value.split() if len(word) >= MIN_WORD)
    with _lock:
        _active = _active or some
        merged = set(_secrets) | found
        # longest first, so a whole value goes before the words inside it
        _secrets[:] = sorted(merged, key=lambda s: (-len(s), s))
        _pattern = (re.compile("|".join(_form_pattern(s) for s in _secrets))
                    if _secrets else None)


def forget() -> None:
    """Clear the registered values (tests; one probe process runs one task)."""
    global _pattern, _active
    with _lock:
        del _secrets[:]
        _pattern = None
        _active = False


def redact(text: str) -> str:
    """``text`` with every registered value, and every value a client library's error
    quotes, replaced by ``<hidden>``."""
    if not _active or not isinstance(text, str):
        return text
    text = _QUOTED_VALUE.sub(lambda m: m.group("lead") + HIDDEN, text)
    pattern = _pattern
    if pattern is not None:
        text = pattern.sub(HIDDEN, text)
    return text


def redact_data(data: Any) -> Any:
    """``data`` (JSON-like: dicts, lists, strings) with every string redacted."""
    if not _active:
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
        if not _active:
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

"""Every user value that reaches a script goes through this module.

Two grammars matter:

* the shell (``job.sh``, ``submit.sh``): values are single-quoted by ``shlex.quote``;
  commands stay argument lists until :func:`join` turns them into text;
* ``#SBATCH`` lines, which sbatch parses itself (``_get_argument`` in Slurm's
  ``sbatch/opt.c``): quotes and backslash escapes are honoured, an unquoted ``#`` starts
  a comment, a backslash escapes the next character *even inside quotes*, and an
  unquoted space ends the value even after a backslash (seen with sbatch 22.05 here).
  So ``shlex.quote`` is wrong there (``'a\\b'`` loses its backslash);
  :func:`sbatch_quote` puts the value in double quotes and backslash-escapes ``"`` and
  ``\\`` inside them.

Values that no quoting can carry (a newline in a ``#SBATCH`` line, a NUL anywhere) are
refused with :class:`~hpctriton.errors.RenderError`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from hpctriton.errors import RenderError

_SBATCH_SAFE = re.compile(r"[A-Za-z0-9_.,:=/@%+\-]*")


@dataclass(frozen=True)
class Raw:
    """Shell text written by hpctriton itself (``"$out"``), never user input."""

    text: str


Arg = str | int | float | Raw


def _refuse_nul(value: str, what: str) -> None:
    if "\x00" in value:
        raise RenderError(f"{what}: a NUL character cannot be passed to a shell")


def q(value: object, what: str = "value") -> str:
    """Quote one value for the shell: it arrives as exactly one argument."""
    if isinstance(value, Raw):
        return value.text
    text = str(value)
    _refuse_nul(text, what)
    return shlex.quote(text)


def join(argv: Iterable[Arg], what: str = "command") -> str:
    """A command line from an argument list; :class:`Raw` items are left as written."""
    return " ".join(q(a, what) for a in argv)


def sbatch_quote(value: object, what: str = "#SBATCH value") -> str:
    """Escape a value for an ``#SBATCH`` line, as sbatch's own parser reads it."""
    text = str(value)
    _refuse_nul(text, what)
    if "\n" in text or "\r" in text:
        raise RenderError(f"{what}: a newline cannot be put in an #SBATCH line ({text!r})")
    if _SBATCH_SAFE.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def env_name(name: str) -> str:
    """A shell variable name, checked (names cannot be quoted)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise RenderError(f"{name!r} is not a valid environment variable name")
    return name


def one_line(value: str, what: str) -> str:
    """Refuse newlines in a value written raw by design (prologue lines)."""
    _refuse_nul(value, what)
    if "\n" in value or "\r" in value:
        raise RenderError(f"{what}: must be a single line")
    return value

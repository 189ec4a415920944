"""The lines ``hpctriton check`` prints as results arrive, fitted to the terminal.

A check prints each result the moment the probe has it (a load check takes minutes), so
its results cannot wait for a table: each is one line, ``PASS  infer  grpc  simple
0.004s  2 output(s) ok``, in columns of fixed widths. When the terminal's width is
known (``COLUMNS``, or standard output is a terminal) no line is wider than it: the
columns are chosen as ``hpctriton report`` chooses its results table's
(:func:`hpctriton.report.fit.result_layouts`: every column, else without protocol and
time unless ``wide``), the model column is as wide as the longest model name, and the
message wraps under itself. When even that does not fit, each result is folded over
indented lines. When the width is not known (a pipe, a file) the lines are the probe's
own (:func:`hpctriton_probe.cli.format_line`), never cut.

This module loads neither rich nor the results model: a check at a terminal costs the
probe's start-up and no more (``tests/test_check_flags.py``).

Example::

    >>> lines = ResultLines(80, models=["simple"])
    >>> lines.lines({"status": "pass", "check": "infer", "protocol": "grpc",
    ...              "model": "simple", "duration_s": 0.004, "message": "ok"})
    ['PASS  infer      grpc  simple   0.004s  ok']
"""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterable, Mapping
from typing import IO, Any

from hpctriton.report.fit import (
    RESULT_COLUMNS,
    ResultLayout,
    first_fitting,
    left_out_note,
    result_layouts,
)

#: The narrowest each column but the message is, by name: ``ERROR``, ``statistics``,
#: ``grpc `` (as the probe's lines), ``-`` for no model, ``  0.004s``.
MIN_WIDTHS = {"status": 5, "check": 10, "protocol": 5, "model": 1, "time": 8}
#: The order of the columns on a line: the status first, as the probe prints them.
LINE_ORDER = ("status", "check", "protocol", "model", "time", "message")
#: What separates the message from the column before it (one space between the others).
MESSAGE_GAP = "  "


def terminal_width(stream: IO[str] | None = None) -> int | None:
    """The width to fit: ``COLUMNS`` when it is a positive number, else the terminal's
    when ``stream`` (default standard output) is one, else None (not known: do not cut).

    Example::

        >>> os.environ["COLUMNS"] = "80"; terminal_width()
        80
    """
    value = os.environ.get("COLUMNS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    stream = stream if stream is not None else sys.stdout
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        pass
    return None


def wrap(text: str, width: int | None, indent: str = "") -> list[str]:
    """``text`` in lines of at most ``width`` characters (None: as it is), broken at
    spaces and, for a word longer than a line, inside the word; later lines start with
    ``indent``."""
    if width is None:
        return text.splitlines() or [""]
    lines: list[str] = []
    for i, paragraph in enumerate(text.splitlines() or [""]):
        first = "" if i == 0 else indent
        lines += textwrap.wrap(paragraph, width=max(width, len(indent) + 1),
                               initial_indent=first, subsequent_indent=indent,
                               break_on_hyphens=False) or [first]
    return lines


class ResultLines:
    """Turns each result entry of the probe into the lines that show it at ``width``.

    ``checks`` and ``models``: the names expected, so that the columns are as wide as
    they need from the first line on (a longer name arriving later widens its column
    from then on). ``wide``: protocol and time on every line, as ``--wide``.
    """

    def __init__(self, width: int, *, checks: Iterable[str] = (), models: Iterable[str] = (),
                 wide: bool = False) -> None:
        self.width = width
        self.wide = wide
        self.widths = dict(MIN_WIDTHS)
        #: The columns some line left out to fit (for a note after the results).
        self.left_out: set[str] = set()
        self._grow({"check": max((len(c) for c in checks), default=0),
                    "model": max((len(m) for m in models), default=0)})

    def _grow(self, needs: Mapping[str, int]) -> None:
        for name, need in needs.items():
            self.widths[name] = max(self.widths[name], need)

    def need(self, layout: ResultLayout) -> int:
        """The characters a line of ``layout`` needs: its columns, the spaces between
        them, and the message's narrowest width."""
        shown = [c for c in LINE_ORDER if c in layout.columns and c != "message"]
        return (sum(self.widths[c] for c in shown) + len(shown) - 1 + len(MESSAGE_GAP)
                + layout.message_width)

    def layout(self) -> ResultLayout | None:
        """The columns shown now (None: none fits, each result is folded)."""
        return first_fitting(result_layouts(self.wide), self.need, self.width)

    def note(self) -> str | None:
        """What the lines left out to fit, and how to see it (None: nothing)."""
        return left_out_note(set(RESULT_COLUMNS) - self.left_out)

    def lines(self, entry: Mapping[str, Any]) -> list[str]:
        """The lines of one result entry (the probe's ``on_result`` argument)."""
        cells = {"status": str(entry["status"]).upper(), "check": str(entry["check"]),
                 "protocol": str(entry.get("protocol") or "-"),
                 "model": str(entry.get("model") or "-"),
                 "time": f"{float(entry.get('duration_s') or 0):.3f}s"}
        message = str(entry.get("message") or "")
        self._grow({name: len(text) for name, text in cells.items()})
        layout = self.layout()
        if layout is None:  # not even the narrow columns fit: fold the whole line
            text = " ".join(cells[c] for c in LINE_ORDER if c != "message")
            return [line.rstrip() for line in wrap(f"{text}{MESSAGE_GAP}{message}",
                                                   self.width, indent="    ")]
        self.left_out |= set(RESULT_COLUMNS) - set(layout.columns)
        head = " ".join(cells[c].rjust(self.widths[c]) if c == "time"
                        else cells[c].ljust(self.widths[c])
                        for c in LINE_ORDER if c in layout.columns and c != "message")
        head += MESSAGE_GAP
        body = wrap(message, self.width - len(head))
        return [(head + body[0]).rstrip(), *(" " * len(head) + line for line in body[1:])]

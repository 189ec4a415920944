"""Terminal tables that fit the terminal without cutting a number.

rich squeezes a table that is wider than the terminal by shrinking its columns, and a
shrunk cell loses its end to an ellipsis: ``3.…`` for a latency, ``con…`` for a
concurrency. Every table hpctriton prints therefore follows three rules:

* numbers (and other short, atomic cells) sit in ``no_wrap`` columns, which rich never
  shrinks before the others;
* text sits in columns that wrap at spaces and fold what is left (``overflow="fold"``),
  so a word is split across lines rather than cut;
* :func:`fitted` prints the table only when its numbers and at least
  :data:`MIN_TEXT_WIDTH` characters of each text column fit; otherwise the first of its
  narrower versions (the same rows, fewer columns) that fits; otherwise the rows as a
  vertical list (``name: value`` lines, one block per row).

The results of checks have the same columns wherever they are shown
(:data:`RESULT_COLUMNS`): ``hpctriton report``'s table and the lines ``hpctriton check``
prints as results arrive (:mod:`hpctriton.report.check_lines`). Both choose their
columns here, with :func:`result_layouts` and :func:`first_fitting`: every column when
they fit with :data:`MESSAGE_WIDTH` characters of message, else all but
:data:`NARROW_DROPPED` (``--wide`` keeps them), else the vertical layout. This module
imports rich only inside the functions that draw, so ``check`` (which never loads rich)
uses it too.

Example::

    >>> console = Console(width=80)
    >>> console.print(fitted(load_table(points), console))
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeVar

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Column, Table

#: The narrowest a wrapping text column may become before the vertical layout is used.
MIN_TEXT_WIDTH = 12

#: The columns of check results, in order (report's table, check's lines).
RESULT_COLUMNS = ("check", "protocol", "model", "status", "time", "message")
#: Result columns left out when every column does not fit the terminal (unless ``wide``):
#: the protocol is in the row's check and the time rarely matters at a glance.
NARROW_DROPPED = ("protocol", "time")
#: The width the message of a check result keeps before :data:`NARROW_DROPPED` columns
#: are left out: below it a 30-row table wraps most messages over three lines or more.
MESSAGE_WIDTH = 32


class ResultLayout(NamedTuple):
    """Which result columns to show, and the narrowest the message column may become."""

    columns: tuple[str, ...]
    message_width: int


_Layout = TypeVar("_Layout")


def result_layouts(wide: bool = False) -> list[ResultLayout]:
    """The layouts to try for check results, widest first: every column with a message
    of :data:`MESSAGE_WIDTH`, then (unless ``wide``) all but :data:`NARROW_DROPPED`
    with a message of at least :data:`MIN_TEXT_WIDTH`. ``wide``: every column, the
    message as narrow as :data:`MIN_TEXT_WIDTH`.

    Example::

        >>> result_layouts()[-1]
        ResultLayout(columns=('check', 'model', 'status', 'message'), message_width=12)
    """
    if wide:
        return [ResultLayout(RESULT_COLUMNS, MIN_TEXT_WIDTH)]
    narrow = tuple(c for c in RESULT_COLUMNS if c not in NARROW_DROPPED)
    return [ResultLayout(RESULT_COLUMNS, MESSAGE_WIDTH), ResultLayout(narrow, MIN_TEXT_WIDTH)]


def left_out_note(columns: Iterable[str]) -> str | None:
    """What a narrow result layout showing ``columns`` says under its results (None
    when it shows every column).

    Example::

        >>> left_out_note(result_layouts()[-1].columns)
        '(protocol and time left out to fit: --wide)'
    """
    shown = set(columns)
    missing = [c for c in RESULT_COLUMNS if c not in shown]
    return f"({' and '.join(missing)} left out to fit: --wide)" if missing else None


def first_fitting(layouts: Sequence[_Layout], need: Callable[[_Layout], int],
                  width: int) -> _Layout | None:
    """The first of ``layouts`` whose ``need`` (in characters) is at most ``width``;
    None when none is (the caller prints a vertical layout).

    Example::

        >>> first_fitting(result_layouts(), lambda lay: 14 * len(lay.columns), 80)
        ResultLayout(columns=('check', 'model', 'status', 'message'), message_width=12)
    """
    return next((layout for layout in layouts if need(layout) <= width), None)


def _widths(console: Console, column: Column) -> Iterable[tuple[int, int]]:
    from rich.measure import Measurement

    options = console.options
    for cell in (column.header, *column.cells):
        measured = Measurement.get(console, options, cell)
        yield measured.minimum, measured.maximum


def needed_width(table: Table, console: Console) -> int:
    """The width ``table`` needs so that no ``no_wrap`` column is shrunk and every other
    column keeps :data:`MIN_TEXT_WIDTH` characters (or all of its text, if shorter)."""
    total = 0
    top, right, bottom, left = table.padding
    last = len(table.columns) - 1
    for i, column in enumerate(table.columns):
        widths = list(_widths(console, column))
        widest = max((m for _, m in widths), default=0)
        if column.no_wrap:
            need = widest
        else:
            longest_word = max((m for m, _ in widths), default=0)
            need = min(widest, max(longest_word, MIN_TEXT_WIDTH))
        if column.min_width is not None:
            need = max(need, column.min_width)
        pad = left + right
        if not table.pad_edge:
            pad -= (left if i == 0 else 0) + (right if i == last else 0)
        total += need + pad
    if table.box is not None:
        total += max(0, len(table.columns) - 1) + (2 if table.show_edge else 0)
    return total


def fits(table: Table, console: Console) -> bool:
    """Whether ``table`` prints at ``console``'s width without cutting a number."""
    return needed_width(table, console) <= console.width


def vertical(table: Table) -> RenderableType:
    """The rows of ``table`` as blocks of ``name  value`` lines (empty cells left out):
    what an 80-column terminal shows when the columns do not fit side by side."""
    from rich.console import Group
    from rich.rule import Rule
    from rich.table import Table as RichTable
    from rich.text import Text

    blocks: list[RenderableType] = []
    if table.title:
        blocks.append(Text.from_markup(str(table.title), style="bold")
                      if isinstance(table.title, str) else table.title)
    headers = [column.header for column in table.columns]
    cells = [list(column.cells) for column in table.columns]
    n_rows = max((len(c) for c in cells), default=0)
    for i in range(n_rows):
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(overflow="fold")
        for header, column in zip(headers, cells, strict=True):
            value = column[i] if i < len(column) else ""
            plain = (Text.from_markup(value) if isinstance(value, str) else value)
            if isinstance(plain, Text) and not plain.plain.strip():
                continue
            grid.add_row(header, value)
        blocks.append(Rule(style="dim"))
        blocks.append(grid)
    if table.caption:
        blocks.append(table.caption if not isinstance(table.caption, str)
                      else Text.from_markup(table.caption))
    return Group(*blocks)


def fitted(table: Table, console: Console, narrower: Sequence[Table] = ()) -> RenderableType:
    """``table`` when it fits ``console`` (:func:`fits`), else the first of ``narrower``
    (the same rows with fewer columns, narrowest last) that fits, else ``table`` as
    :func:`vertical` (every column: a vertical list has room for all)."""
    chosen = first_fitting([table, *narrower], lambda t: needed_width(t, console),
                           console.width)
    return chosen if chosen is not None else vertical(table)

"""Terminal tables that fit the terminal without cutting a number.

rich squeezes a table that is wider than the terminal by shrinking its columns, and a
shrunk cell loses its end to an ellipsis: ``3.…`` for a latency, ``con…`` for a
concurrency. Every table hpctriton prints therefore follows three rules:

* numbers (and other short, atomic cells) sit in ``no_wrap`` columns, which rich never
  shrinks before the others;
* text sits in columns that wrap at spaces and fold what is left (``overflow="fold"``),
  so a word is split across lines rather than cut;
* :func:`fitted` prints the table only when its numbers and at least
  :data:`MIN_TEXT_WIDTH` characters of each text column fit; otherwise it prints the
  same rows as a vertical list (``name: value`` lines, one block per row).

Example::

    >>> console = Console(width=80)
    >>> console.print(fitted(load_table(points), console))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Column, Table

#: The narrowest a wrapping text column may become before the vertical layout is used.
MIN_TEXT_WIDTH = 12


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


def fitted(table: Table, console: Console) -> RenderableType:
    """``table`` when it fits ``console`` (:func:`fits`), else :func:`vertical`."""
    return table if fits(table, console) else vertical(table)

"""Pieces shared by the HTML report, the comparison page and the notebook view:
escaping, number formats, tables, status badges, embedded figures, and the page around
them. Internal to ``hpctriton.report``: the public entry points are
``write_html_report``, ``write_junit`` and ``write_comparison_html``.

Nothing here imports matplotlib: a figure is embedded by calling its own ``savefig``.
Pages are self-contained — styles inline, figures as ``data:`` PNG — so a report can be
mailed, attached to a CI job or opened years later without a network.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import importlib.util
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctriton.report.plots import png_bytes
from hpctriton.results.model import STATUSES, CheckResult, Results

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATUS_COLOURS = {"pass": "#2e8b57", "fail": "#c7434f", "error": "#8e1b2c",
                  "skip": "#b8860b"}
#: Details longer than this (as indented JSON) are cut in HTML tables.
DETAILS_LIMIT = 4000


def matplotlib_available() -> bool:
    """Whether figures can be drawn here (without importing matplotlib, which is slow).

    Example::

        >>> matplotlib_available()
        True
    """
    return importlib.util.find_spec("matplotlib") is not None


# ------------------------------------------------------------------ markup


def esc(value: Any) -> str:
    """Text for HTML (None as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def badge(status: str) -> str:
    return f'<span class="st st-{esc(status)}">{esc(status)}</span>'


#: The CSS class of each verdict.
VERDICT_CLASSES = {"OK": "v-ok", "FAILED": "v-bad", "NO RESULTS": "v-none"}


def verdict(results: Results) -> tuple[str, str]:
    """``("OK" | "FAILED" | "NO RESULTS", css class)``."""
    return results.verdict, VERDICT_CLASSES[results.verdict]


def fmt_num(value: Any, digits: int = 2, *, count: bool = False) -> str:
    """Numbers for tables: ``1,234``, ``12.3``, ``0.042``; ``–`` for None; ``count``:
    a whole number."""
    if value is None:
        return "–"
    if count and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{round(value):,}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 100:
            return f"{int(value):,}"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.{digits}f}" if abs(value) >= 0.01 or value == 0 else f"{value:.2g}"
    return esc(value)


def fmt_level(value: float) -> str:
    """A load level as written in the config: concurrency ``1`` (not ``1.00``), request
    rate ``12.5``."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.3f}".rstrip("0").rstrip(".")


def fmt_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *,
          cls: str = "", numeric: Sequence[int] = (), nowrap: Sequence[int] = (),
          row_classes: Sequence[str] = ()) -> str:
    """A table from already-escaped cells, scrolling sideways when too wide; ``numeric``
    columns are right-aligned, ``nowrap`` columns never break their text;
    ``row_classes[i]`` is the CSS class of row ``i``."""
    nums, keep = set(numeric), set(nowrap)

    def attrs(i: int) -> str:
        names = (["num"] if i in nums else []) + (["nw"] if i in keep else [])
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(f"<th{attrs(i)}>{h}</th>" for i, h in enumerate(headers))
    def tr(k: int) -> str:
        name = row_classes[k] if k < len(row_classes) else ""
        return f'<tr class="{name}">' if name else "<tr>"

    body = "".join(tr(k) + "".join(f"<td{attrs(i)}>{c}</td>" for i, c in enumerate(row))
                   + "</tr>" for k, row in enumerate(rows))
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def details_cell(details: dict[str, Any]) -> str:
    if not details:
        return ""
    text = json.dumps(details, indent=1, default=str, sort_keys=False)
    if len(text) > DETAILS_LIMIT:
        text = text[:DETAILS_LIMIT] + "\n… (cut; the full details are in results.json)"
    return f"<details><summary>details</summary><pre>{esc(text)}</pre></details>"


def checks_table(checks: Sequence[CheckResult], *, task_column: bool = False,
                 with_details: bool = True) -> str:
    """Every result: check, protocol, model, status, time, and the message with the
    result's details (folded) under it."""
    headers = (["task"] if task_column else []) + ["check", "protocol", "model", "status",
                                                   "time", "message"]
    rows = []
    for c in checks:
        message = f'<span class="msg">{esc(c.message)}</span>'
        if with_details:
            message += details_cell(c.details)
        rows.append(([esc(c.task)] if task_column else []) + [
            esc(c.check), esc(c.protocol or ""), esc(c.model or ""), badge(c.status),
            esc(fmt_duration(c.duration_s)), message])
    time_col = headers.index("time")
    return table(headers, rows, cls="checks", numeric=[time_col],
                 nowrap=list(range(time_col + 1)))


#: Figures are shown at this many CSS pixels per inch of figure ...
SHOW_PPI = 110
#: ... and rendered at this many dots per inch, sharp on high-density screens.
RENDER_DPI = 150


def figure_img(fig: Figure, alt: str) -> str:
    """An ``<img>`` with the figure as an embedded PNG (``data:`` URI)."""
    data = base64.b64encode(png_bytes(fig, RENDER_DPI)).decode("ascii")
    width = round(fig.get_figwidth() * SHOW_PPI)
    return (f'<figure><img alt="{esc(alt)}" width="{width}" '
            f'src="data:image/png;base64,{data}"></figure>')


def write_text(path: Path, text: str) -> None:
    """Write a report file whole (temp file + rename), with the usual permissions.

    Unlike ``runs.atomic_write`` (0600 temp files, right for run records) a report
    is for sharing: it gets the mode the umask gives a new file (0644 typically).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def utc_now_text() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def version() -> str:
    try:
        from hpctriton_probe import __version__
    except ImportError:  # pragma: no cover - the probe ships with hpctriton
        return "?"
    return str(__version__)


CSS = """
:root { --fg:#1f2328; --muted:#5f6b73; --line:#d8dee4; --bg:#ffffff; --soft:#f6f8fa;
  --pass:#2e8b57; --fail:#c7434f; --error:#8e1b2c; --skip:#b8860b; --accent:#3b6fb6; }
* { box-sizing: border-box; }
body { margin:0; background:var(--soft); color:var(--fg);
  font:14px/1.45 -apple-system, "Segoe UI", "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
main { max-width:1200px; margin:0 auto; padding:24px 28px 48px; }
header.top { background:var(--bg); border:1px solid var(--line); border-radius:10px;
  padding:18px 22px; margin-bottom:18px; }
header.top h1 { margin:0 0 2px; font-size:22px; }
header.top .sub { color:var(--muted); font-family:ui-monospace, "DejaVu Sans Mono", monospace;
  font-size:13px; }
.verdict { float:right; font-weight:700; font-size:15px; padding:6px 14px;
  border-radius:999px; color:#fff; letter-spacing:.04em; }
.v-ok { background:var(--pass); } .v-bad { background:var(--fail); }
.v-none { background:var(--muted); }
dl.meta { display:grid; grid-template-columns:repeat(auto-fill, minmax(250px, 1fr));
  gap:6px 18px; margin:14px 0 0; }
dl.meta div { min-width:0; } dl.meta dt { color:var(--muted); font-size:12px; }
dl.meta dd { margin:0; overflow-wrap:anywhere; }
nav.toc { margin:0 0 18px; font-size:13px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:14px; }
section.card { background:var(--bg); border:1px solid var(--line); border-radius:10px;
  padding:16px 22px; margin-bottom:18px; }
section.card h2 { margin:0 0 10px; font-size:17px; }
section.card h3 { margin:18px 0 8px; font-size:15px; }
p.note { color:var(--muted); font-size:12.5px; margin:4px 0 10px; }
.counts { display:flex; flex-wrap:wrap; gap:10px; margin:4px 0 14px; }
.count { border:1px solid var(--line); border-radius:8px; padding:8px 14px; min-width:92px; }
.count b { display:block; font-size:22px; }
.count span { color:var(--muted); font-size:12px; }
.count.c-pass b { color:var(--pass); } .count.c-fail b { color:var(--fail); }
.count.c-error b { color:var(--error); } .count.c-skip b { color:var(--skip); }
table { border-collapse:collapse; width:100%; margin:6px 0 10px; font-size:13px; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { background:var(--soft); font-weight:600; white-space:nowrap; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
td.nw { white-space:nowrap; }
div.scroll { overflow-x:auto; margin:6px 0 10px; } div.scroll table { margin:0; }
tr.group-start td { border-top:2px solid var(--line); }
tbody tr:hover { background:#fafbfc; }
.msg { overflow-wrap:anywhere; }
.st { display:inline-block; min-width:44px; text-align:center; padding:1px 7px;
  border-radius:5px; color:#fff; font-size:12px; font-weight:600; }
.st-pass { background:var(--pass); } .st-fail { background:var(--fail); }
.st-error { background:var(--error); } .st-skip { background:var(--skip); }
.st-missing, .st-none { background:var(--muted); }
td.cell-pass { background:#e3f2e9; } td.cell-fail { background:#f8dfe2; }
td.cell-error { background:#f0cfd4; } td.cell-skip { background:#f7eccd; }
td.cell-none { color:var(--muted); }
.better { color:var(--pass); font-weight:600; } .worse { color:var(--fail); font-weight:600; }
.same { color:var(--muted); }
details summary { cursor:pointer; color:var(--accent); font-size:12px; }
table.checks details { display:inline; margin-left:10px; }
table.checks details[open] { display:block; margin:4px 0 0; }
pre { background:var(--soft); border:1px solid var(--line); border-radius:6px;
  padding:8px; max-height:360px; overflow:auto; font-size:12px; white-space:pre-wrap; }
figure { margin:8px 0 14px; } figure img { max-width:100%; height:auto; display:block; }
code { font-family:ui-monospace, "DejaVu Sans Mono", monospace; font-size:12.5px; }
a { color:var(--accent); }
footer { color:var(--muted); font-size:12px; text-align:center; margin-top:26px; }
.task-head { display:flex; align-items:baseline; gap:12px; flex-wrap:wrap; }
.task-head h3 { margin:0; }
"""


def page(title: str, body: str) -> str:
    """A whole HTML document: inline CSS, no scripts, no external references."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{esc(title)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}<footer>made by hpctriton {esc(version())} on "
            f"{esc(utc_now_text())}</footer></main></body></html>\n")


def count_boxes(results: Results) -> str:
    counts = results.counts()
    boxes = [f'<div class="count c-{s}"><b>{counts[s]}</b><span>{s}</span></div>'
             for s in STATUSES]
    boxes.insert(0, f'<div class="count"><b>{len(results.tasks)}</b><span>task'
                    f'{"s" if len(results.tasks) != 1 else ""} with results</span></div>')
    if results.missing_tasks:
        boxes.append(f'<div class="count c-fail"><b>{len(results.missing_tasks)}</b>'
                     "<span>tasks without results</span></div>")
    return '<div class="counts">' + "".join(boxes) + "</div>"

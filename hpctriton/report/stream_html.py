"""The streaming part of the HTML report: for decoupled (LLM-serving) models under
load, the figure of time to first token, inter-token latency and token throughput
against load, and the table of those figures per point."""

from __future__ import annotations

from collections.abc import Sequence

from hpctriton.report.htmlkit import esc, figure_img, fmt_num, table
from hpctriton.results.streaming import STREAM_PERCENTILES, StreamPoint


def stream_table(points: Sequence[StreamPoint], task_column: bool = False) -> str:
    """One row per decoupled model and load level."""
    goodput = any(p.goodput_per_s is not None for p in points)
    headers = (["task"] if task_column else []) + [
        "model", "protocol", "mode", "load",
        *[f"TTFT {n} ms" for n in STREAM_PERCENTILES],
        *[f"ITL {n} ms" for n in STREAM_PERCENTILES],
        "e2e p99 ms", "tokens/req", "output tok/s", "req/s", "tokens counted"] + (
        ["goodput/s", "goodput %"] if goodput else [])
    rows = []
    for p in points:
        share = None if p.goodput_share is None else 100 * p.goodput_share
        rows.append(([f'<a href="#task-{p.task}">{p.task}</a>'] if task_column else []) + [
            esc(p.model), esc(p.protocol or ""), esc(p.mode.replace("_", " ")),
            fmt_num(p.load), *[fmt_num(p.ttft(n)) for n in STREAM_PERCENTILES],
            *[fmt_num(p.itl(n)) for n in STREAM_PERCENTILES], fmt_num(p.e2e_ms.get("p99")),
            fmt_num(p.tokens_per_request.get("mean")), fmt_num(p.output_tokens_per_s),
            fmt_num(p.requests_per_s), esc(p.token_count)] + (
            [fmt_num(p.goodput_per_s), fmt_num(share)] if goodput else []))
    first = 1 if task_column else 0
    return table(headers, rows, numeric=list(range(first + 3, len(headers))),
                 nowrap=list(range(first + 3)))


def stream_block(points: Sequence[StreamPoint], figures: bool,
                 task_labels: dict[int, str] | None = None, many: bool = False) -> str:
    """The figure (when ``figures``) and the table of streaming points; "" without."""
    if not points:
        return ""
    body = "<h3>Streaming (decoupled models)</h3>"
    if figures:
        from hpctriton.report.stream_plots import stream_figure

        body += figure_img(stream_figure(points, task_labels),
                           "time to first token, inter-token latency and token throughput "
                           "against load, per decoupled model")
    body += ("<p class=note>TTFT: from sending a request (open loop: from its intended "
             "send time) to its first response with an output. ITL: the gaps between a "
             "request's consecutive responses. Tokens as the results say (tokens "
             "counted: elements of the token output per response, responses, or words). "
             "Goodput: requests per second that met every bound of the SLO.</p>")
    return body + stream_table(points, task_column=many)

"""Slurm: ``#SBATCH`` directives, ``sbatch`` job arrays, ``sacct``/``squeue`` as hints.

Directive values are formatted by simple-slurm's helpers (ranges to array specs,
timedeltas to ``D-HH:MM:SS``) and quoted here for sbatch's own parser; option names
in ``slurm.extra`` are checked against simple-slurm's list of sbatch options.
"""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from simple_slurm.core import Slurm, fmt_value, read_simple_txt

from ..errors import ConfigError
from ..quoting import sbatch_quote
from .base import Backend, RenderContext

#: Long sbatch option names simple-slurm knows (``cpus-per-task``, …).
SBATCH_OPTIONS = frozenset(
    Slurm._valid_key(row[0]) for row in read_simple_txt("arguments.txt") if row and row[0]
)
_OPTION = re.compile(r"--(?P<key>[a-z][a-z0-9-]*)(=(?P<value>.*))?", re.DOTALL)


def _directive(key: str, value: Any) -> str:
    text = fmt_value(value)
    return f"#SBATCH --{key}={sbatch_quote(text, f'slurm {key}')}"


def job_name(ctx: RenderContext) -> str:
    """The Slurm job name: ``slurm.job_name`` or ``hpct-<run id>``."""
    return ctx.cluster.slurm.job_name or f"hpct-{ctx.run_id}"


def array_spec(n_tasks: int, parallelism: int | None = None, offset: int = 0) -> str:
    """``0-19%4`` for tasks ``offset .. offset+n-1`` expressed from zero."""
    spec = fmt_value(range(0, n_tasks)) if n_tasks > 1 else "0"
    return spec + (f"%{parallelism}" if parallelism else "")


def output_pattern(n_tasks: int) -> str:
    """Where Slurm writes the job's stdout/stderr: beside the results, collected with them."""
    return "results/slurm-%A_%a.out" if n_tasks > 1 else "results/slurm-%j.out"


class SlurmBackend(Backend):
    """Submit with ``sbatch --parsable``; one job array per run (chunked to MaxArraySize)."""

    name = "slurm"
    template = "slurm.sh.j2"
    manual_command = "sbatch job.sh"

    def directives(self, ctx: RenderContext) -> list[str]:
        s = ctx.cluster.slurm
        time: Any = s.time
        if isinstance(time, int):
            time = _dt.timedelta(seconds=time)
        pairs: list[tuple[str, Any]] = [
            ("job-name", job_name(ctx)),
            ("partition", s.partition),
            ("account", s.account),
            ("qos", s.qos),
            ("time", time),
            ("nodes", s.nodes),
            ("ntasks", s.ntasks),
            ("cpus-per-task", s.cpus_per_task),
            ("mem", s.mem),
            ("gres", s.gres),
            ("output", output_pattern(ctx.n_tasks)),
        ]
        if ctx.n_tasks > 1:
            pairs.append(("array", array_spec(ctx.n_tasks, s.array_parallelism)))
        lines = [_directive(k, v) for k, v in pairs if v is not None]
        where = f"clusters.{ctx.cluster_name}.slurm.extra" if ctx.cluster_name else "slurm.extra"
        for item in s.extra:
            match = _OPTION.fullmatch(item)
            if not match or match["key"] not in SBATCH_OPTIONS:
                raise ConfigError(
                    f"{item!r} is not a known sbatch option (--name or --name=value)", field=where
                )
            if match["key"] in ("output", "error", "array", "chdir", "parsable", "wait"):
                raise ConfigError(
                    f"--{match['key']} is set by hpctriton and cannot be given in extra",
                    field=where,
                )
            value = match["value"]
            lines.append(f"#SBATCH --{match['key']}" + (
                "" if value is None else "=" + sbatch_quote(value, f"slurm extra {item!r}")))
        return lines

    def how_to_run(self, ctx: RenderContext) -> str:
        return f"Submit from inside this folder: {self.manual_command} (the job runs in the bundle)"

"""DiCOS (ASGC): ``dicos job submit`` from inside the staged bundle.

The command-line contract is in the README (from ASGC's public user documentation);
all parsing of ``dicos`` output lives in :mod:`hpctriton.backends.dicos_cli`.
"""

from __future__ import annotations

import re

from .. import quoting, templating
from .base import Backend, RenderContext

#: DiCOS job names: at most 25 characters, no spaces.
NAME_LIMIT = 25
ARGLIST = "arglist.txt"
JOB_COMMAND = "bash job.sh"


def dicos_name(name: str, run_id: str) -> str:
    """The one rule that makes a job name DiCOS-safe.

    Every run of characters outside ``A-Z a-z 0-9 _ . -`` becomes ``_``; the result is
    cut to 20 characters (trailing ``_ . -`` dropped) and suffixed with ``-`` and the run
    id's last four characters (its random part): unique, and at most 25 characters.
    """
    suffix = run_id[-4:]
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.-")
    safe = safe[: NAME_LIMIT - len(suffix) - 1].rstrip("_.-") or "hpct"
    return f"{safe}-{suffix}"


def _run_name(run_id: str) -> str:
    # run ids are <date>-<time>-<slug>-<hex4>: the slug is the readable part
    parts = run_id.split("-")
    return "-".join(parts[2:-1]) if len(parts) > 3 else run_id


def submit_argv(ctx: RenderContext) -> list[str]:
    """The ``dicos job submit`` command, run from inside the bundle."""
    d = ctx.cluster.dicos
    name = dicos_name(d.name or _run_name(ctx.run_id), ctx.run_id)
    argv = ["dicos", "job", "submit", "-i", ".", "-N", name, "-c", JOB_COMMAND]
    if ctx.n_tasks > 1:
        argv += ["-A", ARGLIST]
    else:
        argv += ["-j", str(d.jobs)]
    if d.require_cores is not None:
        argv += ["--requireCores", str(d.require_cores)]
    if d.require_ram is not None:
        argv += ["--requireRAM", str(d.require_ram)]
    return argv


class DicosBackend(Backend):
    """One DiCOS task per run: ``-j N`` copies, or one job per sweep point with ``-A``."""

    name = "dicos"
    template = "dicos.sh.j2"
    manual_command = "bash submit.sh"

    def extra_files(self, ctx: RenderContext) -> dict[str, str]:
        text = templating.render(
            "dicos_submit.sh.j2", run_id=ctx.run_id, submit_command=quoting.join(submit_argv(ctx))
        )
        files = {"submit.sh": text}
        if ctx.n_tasks > 1:
            files[ARGLIST] = "".join(f"--task {i}\n" for i in range(ctx.n_tasks))
        return files

    def how_to_run(self, ctx: RenderContext) -> str:
        return f"Submit from inside this folder: {self.manual_command} (dicos job submit -i .)"

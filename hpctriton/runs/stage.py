"""A run's folders on both sides: staging the bundle, setting earlier results aside."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

from hpctriton.errors import CommandError, RemoteError
from hpctriton.runs.record import RunRecord
from hpctriton.shell import templates as templating
from hpctriton.transport import Transport

#: Exit code of the staging script when the run's remote folder already exists.
EXISTS = 17


def stage_bundle(transport: Transport, bundle_dir: Path, remote_dir: str) -> None:
    """Create the remote folder (refusing to reuse one; private: umask 077) and copy
    the bundle over (files 0600, folders 0700: see ``transport.put_files``). When the
    copy fails (a full disk), the half-staged folder is removed."""
    script = templating.render("hpctriton.runs:stage.sh.j2", remote_dir=remote_dir,
                               results_dir=f"{remote_dir}/results", exists_code=EXISTS)
    result = transport.run_script(script)
    if result.exit_code == EXISTS:
        raise RemoteError(f"{transport.label}:{remote_dir} already exists: choose another "
                          "run id or remove it")
    if result.exit_code != 0:
        raise CommandError(result.script, result.exit_code, result.stdout, result.stderr,
                           message=f"cannot create {remote_dir} on {transport.label} "
                                   "(is the cluster's workdir writable?)")
    files = [(p, p.relative_to(bundle_dir).as_posix())
             for p in sorted(bundle_dir.rglob("*")) if p.is_file()]
    try:
        transport.put_files(files, remote_dir)
    except RemoteError:
        # nothing half-staged: the folder was made by this call (it refuses to reuse one)
        cleanup = templating.render("hpctriton.runs:unstage.sh.j2", remote_dir=remote_dir)
        with contextlib.suppress(RemoteError):
            transport.run_script(cleanup)
        raise


def set_aside(transport: Transport, record: RunRecord, tasks: Sequence[int],
              attempt: int) -> None:
    """Keep the earlier results of ``tasks``, remote and local, as
    ``results/<task>.attempt-<attempt>`` before they run again."""
    moves = [(f"results/{t}", f"results/{t}.attempt-{attempt}") for t in tasks]
    script = templating.render("hpctriton.runs:set_aside.sh.j2", remote_dir=record.remote_dir,
                               moves=moves)
    transport.run_script(script).check("setting earlier results aside")
    for t in tasks:
        local = record.results_dir / str(t)
        if local.exists():
            local.rename(local.with_name(f"{t}.attempt-{attempt}"))

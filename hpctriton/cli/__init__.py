"""The ``hpctriton`` command line: a thin layer over the Python API.

Conventions (the contract in docs/cli.md): ``-c/--config`` defaults to ``./hpctriton.yaml``;
``--json`` puts machine-readable output, and nothing else, on stdout; files are written
only through explicit options; exit codes 0 success, 1 checks or job failed, 2 usage or
config error, 3 remote or scheduler error. Only this package catches hpctriton's errors.

Modules: :mod:`.app` (the group, shared options, errors, what to run next, finding
runs), :mod:`.prepare` (init, schema, render, image, doctor), :mod:`.here` (check,
demo), :mod:`.runs` (submit, status, wait, cancel, resubmit, collect, runs),
:mod:`.reports` (report, compare), :mod:`.monitor` (schedule, history,
baseline; collect --all, compare --baseline). Each command imports what it uses when it runs.
"""

from hpctriton.cli import here, monitor, prepare, reports, runs  # noqa: F401 - they add commands
from hpctriton.cli.app import cli, main

__all__ = ["cli", "main"]

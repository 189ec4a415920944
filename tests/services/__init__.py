"""Real services for tests: OpenSSH, Slurm (+ munge, slurmdbd, MariaDB), started from Python.

Plain Python without pytest, so the same code serves the fixtures in
``tests/fixtures_services.py`` and a developer at a REPL (``cd tests; python``)::

    from services import start_slurm, start_sshd
    slurm = start_slurm()
    sshd = start_sshd(env=slurm.env)
    ...
    sshd.stop(); slurm.stop()
"""

from .common import ServiceError, Unavailable
from .slurm import NoAccounting, Slurm, no_accounting, start_slurm
from .sshd import Sshd, start_sshd

__all__ = [
    "NoAccounting",
    "ServiceError",
    "Slurm",
    "Sshd",
    "Unavailable",
    "no_accounting",
    "start_slurm",
    "start_sshd",
]

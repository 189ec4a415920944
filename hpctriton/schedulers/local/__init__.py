"""Local: the bundle runs as background processes on the target host, no scheduler."""

from hpctriton.schedulers.local.options import LocalOptions
from hpctriton.schedulers.local.scheduler import LocalScheduler

__all__ = ["LocalOptions", "LocalScheduler"]

"""DiCOS (ASGC): ``dicos job submit`` from inside the staged bundle, ``getoutput`` to collect."""

from hpctriton.schedulers.dicos.options import DicosOptions
from hpctriton.schedulers.dicos.scheduler import DicosScheduler

__all__ = ["DicosOptions", "DicosScheduler"]

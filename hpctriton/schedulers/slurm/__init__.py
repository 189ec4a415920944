"""Slurm: ``sbatch`` job arrays, ``sacct``/``squeue`` hints, multi-task load through ``srun``."""

from hpctriton.schedulers.slurm.options import SlurmOptions
from hpctriton.schedulers.slurm.scheduler import SlurmScheduler

__all__ = ["SlurmOptions", "SlurmScheduler"]

"""The ``slurm:`` section of a cluster: ``#SBATCH`` directives and array limits."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from hpctriton.schedulers.base import SchedulerOptions


class SlurmOptions(SchedulerOptions):
    """``#SBATCH`` directives; ``extra`` takes any other ``--option=value``."""

    job_name: str | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    #: ``"MM"``, ``"HH:MM:SS"``, ``"D-HH:MM:SS"`` as sbatch takes it, or seconds.
    time: str | int | None = "00:10:00"
    nodes: int | None = None
    ntasks: int | None = None
    cpus_per_task: int | None = 1
    mem: str | None = None
    gres: str | None = None
    #: Extra sbatch options, e.g. ``["--constraint=cpu", "--exclusive"]``.
    extra: list[str] = Field(default_factory=list)
    #: Cap on tasks running at once in an array (the ``%N`` suffix).
    array_parallelism: int | None = Field(default=None, ge=1)
    #: Override the cluster's ``MaxArraySize`` (else asked from ``scontrol show config``).
    max_array_size: int | None = Field(default=None, ge=1)

    @field_validator("time")
    @classmethod
    def _time_format(cls, value: str | int | None) -> str | int | None:
        if isinstance(value, str) and not re.fullmatch(
            r"(\d+-)?\d+(:\d{1,2}){0,2}|UNLIMITED|INFINITE", value
        ):
            raise ValueError(f"time {value!r} is not a Slurm time (MM, HH:MM:SS, D-HH:MM:SS)")
        return value

    @field_validator("extra")
    @classmethod
    def _extra_are_options(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item.startswith("-"):
                raise ValueError(f"extra item {item!r} must be an sbatch option like --qos=low")
        return value

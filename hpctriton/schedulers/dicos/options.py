"""The ``dicos:`` section of a cluster: ``dicos job submit`` options."""

from __future__ import annotations

from pydantic import Field

from hpctriton.schedulers.base import SchedulerOptions


class DicosOptions(SchedulerOptions):
    """``dicos job submit`` options."""

    #: ``-j``: copies of the job (without a sweep).
    jobs: int = Field(default=1, ge=1)
    require_cores: int | None = Field(default=None, ge=1)
    #: MB.
    require_ram: int | None = Field(default=None, ge=1)
    #: Job name; made DiCOS-safe (at most 25 characters, no spaces).
    name: str | None = None

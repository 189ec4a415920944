"""The ``local:`` section of a cluster."""

from __future__ import annotations

from pydantic import Field

from hpctriton.schedulers.base import SchedulerOptions


class LocalOptions(SchedulerOptions):
    """The local scheduler: tasks run as background processes on the target host."""

    #: Tasks running at once.
    parallel: int = Field(default=1, ge=1)

"""Local: run the bundle as a process on the target host, no scheduler."""

from __future__ import annotations

from .base import Backend


class LocalBackend(Backend):
    """``bash job.sh --task N`` for each task, in the background on the target host."""

    name = "local"
    template = "local.sh.j2"

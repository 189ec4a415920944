"""The checks: one module per check, named after it, each declaring itself as ``CHECK``
(see :class:`~hpctriton_probe.checks.base.Check`).

A check's ``run(ctx)`` yields result entries (``schema.ResultEntry``); the runner
records them as they come and rewrites ``results.json`` after every check. An entry's
status is ``pass``, ``fail`` (the server answered wrongly or not at all), ``error``
(the probe could not perform the check) or ``skip`` (not applicable; the reason is the
message). The valid names are those of ``spec.CHECK_OPTIONS``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from hpctriton_probe.spec import CHECK_OPTIONS

if TYPE_CHECKING:
    from hpctriton_probe.checks.base import Check


def by_name(name: str) -> Check:
    """The declaration of check ``name``; its module is imported on first use, so the
    probe starts without importing checks it does not run."""
    if name not in CHECK_OPTIONS:
        raise KeyError(name)
    declared: Check = importlib.import_module(f"{__name__}.{name}").CHECK
    return declared

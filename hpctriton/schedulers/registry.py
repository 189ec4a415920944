"""The scheduler registry: name -> scheduler class, from the ``hpctriton.schedulers``
entry-point group.

The built-in schedulers are known even without package metadata (a source tree on
``sys.path``); other packages add theirs through the entry-point group (see
:mod:`hpctriton.schedulers.base`). As in ReFrame, a scheduler whose import fails keeps
its error until it is actually chosen: a broken plugin never stops a run on another.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
from importlib import metadata
from typing import Any

from hpctriton.errors import ConfigError
from hpctriton.schedulers.base import Scheduler, SchedulerOptions

log = logging.getLogger("hpctriton.schedulers")

#: The entry-point group schedulers register in.
GROUP = "hpctriton.schedulers"
_BUILTIN = {
    "slurm": "hpctriton.schedulers.slurm:SlurmScheduler",
    "dicos": "hpctriton.schedulers.dicos:DicosScheduler",
    "local": "hpctriton.schedulers.local:LocalScheduler",
}
#: Scheduler names are config keys (the cluster's ``<name>:`` section).
_NAME = re.compile(r"[a-z][a-z0-9_]*")


@functools.cache
def _targets() -> dict[str, str]:
    """Name -> ``"module:Class"``: the built-ins first, then the entry points."""
    targets = dict(_BUILTIN)
    for entry in metadata.entry_points(group=GROUP):
        known = targets.setdefault(entry.name, entry.value)
        if known != entry.value:
            log.warning("ignoring the scheduler entry point %s = %s: %r is %s",
                        entry.name, entry.value, entry.name, known)
    return targets


def names() -> list[str]:
    """Registered scheduler names, built-ins first."""
    return list(_targets())


def unknown_backend(name: str) -> ConfigError:
    """The error for a name no scheduler is registered under."""
    return ConfigError(f"unknown backend {name!r}; valid backends: {', '.join(names())}",
                       field="backend")


def _import(name: str, target: str) -> type[Scheduler[Any]]:
    module_name, _, attribute = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Scheduler)):
        raise TypeError(f"{target} is not a Scheduler subclass")
    if getattr(cls, "name", None) != name or not _NAME.fullmatch(name):
        raise TypeError(f"{target} is registered as {name!r} but is named "
                        f"{getattr(cls, 'name', None)!r} (names are lowercase words)")
    options = getattr(cls, "options_model", None)
    if not (isinstance(options, type) and issubclass(options, SchedulerOptions)):
        raise TypeError(f"{target}.options_model is not a SchedulerOptions subclass")
    return cls


@functools.cache
def _load(name: str) -> type[Scheduler[Any]] | str:
    """The class, or why loading it failed (kept, so it is raised when the scheduler
    is chosen and only then)."""
    target = _targets()[name]
    try:
        return _import(name, target)
    except Exception as exc:  # noqa: BLE001 - any failure of a plugin is kept, not fatal
        log.debug("scheduler %s (%s) cannot be loaded", name, target, exc_info=True)
        return f"the {name} scheduler ({target}) cannot be loaded: {type(exc).__name__}: {exc}"


def load(name: str) -> type[Scheduler[Any]]:
    """The scheduler class registered as ``name``.

    Raises :class:`~hpctriton.errors.ConfigError` for an unknown name, or with the
    import error of a scheduler that cannot be loaded.
    """
    if name not in _targets():
        raise unknown_backend(name)
    loaded = _load(name)
    if isinstance(loaded, str):
        raise ConfigError(loaded, field="backend")
    return loaded


def get_scheduler(name: str) -> Scheduler[Any]:
    """A fresh scheduler object for ``name`` (see :func:`load` for the errors)."""
    return load(name)()

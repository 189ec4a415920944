"""The backend registry: name -> backend class, imported only when chosen.

A backend whose optional imports fail keeps its error until it is actually used.
"""

from __future__ import annotations

import importlib

from hpctriton.errors import ConfigError
from hpctriton.schedulers.base import Backend, DoctorCheck, RenderContext

_REGISTRY = {
    "slurm": "hpctriton.schedulers.slurm.scheduler:SlurmBackend",
    "dicos": "hpctriton.schedulers.dicos.scheduler:DicosBackend",
    "local": "hpctriton.schedulers.local.scheduler:LocalBackend",
}


def names() -> list[str]:
    """Registered backend names."""
    return list(_REGISTRY)


def get_backend(name: str) -> Backend:
    """A fresh backend object for ``name``; unknown names list the valid ones."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown backend {name!r}; valid backends: {', '.join(_REGISTRY)}", field="backend"
        ) from None
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    backend: Backend = cls()
    return backend


__all__ = ["Backend", "DoctorCheck", "RenderContext", "get_backend", "names"]

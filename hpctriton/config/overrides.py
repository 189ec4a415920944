"""Dotted-key overrides: ``--set server.http_port=31443`` and sweep points.

Both change the raw YAML data before validation, so an override is checked exactly
like the file (seed 001's ports are known only once the server's container starts).
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from hpctriton.errors import ConfigError


def split_key(key: str) -> tuple[str, ...]:
    """``"clusters.a.slurm.partition"`` -> its parts; empty parts are refused."""
    parts = tuple(key.split("."))
    if not key or any(not p.strip() for p in parts):
        raise ConfigError(f"invalid dotted key {key!r}", field=key)
    return parts


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one ``--set key=value``; the value is read as YAML (``8000`` is a number)."""
    key, sep, raw = item.partition("=")
    if not sep:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    key = key.strip()
    split_key(key)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value is not valid YAML: {exc}", field=key) from None
    return key, value


def apply(data: Mapping[str, Any] | None, key: str, value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``key`` (dotted) set to ``value``; parents are created."""
    result: dict[str, Any] = copy.deepcopy(dict(data or {}))
    node: Any = result
    parts = split_key(key)
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = ".".join(parts[: i + 1])
            raise ConfigError(f"cannot set {key}: {where} is not a mapping", field=key)
        node = child
    node[parts[-1]] = copy.deepcopy(value)
    return result


def apply_all(data: Mapping[str, Any] | None, items: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Apply several ``(key, value)`` overrides in order."""
    result = dict(data or {})
    for key, value in items:
        result = apply(result, key, value)
    return result


def sweep_points(sweep: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    """The Cartesian product of a sweep, in a stable order (first key varies slowest).

    ``{}`` gives one empty point: a run without a sweep is a run of one task.
    """
    if not sweep:
        return [{}]
    keys = list(sweep)
    combos = itertools.product(*(sweep[k] for k in keys))
    return [dict(zip(keys, combo, strict=True)) for combo in combos]

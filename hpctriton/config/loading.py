"""Reading a config: YAML file or plain data, ``--set`` overrides, validation.

A bad config is a :class:`~hpctriton.errors.ConfigError` naming the file, the YAML
line, the field path and, for an unknown key, the valid keys
(:mod:`hpctriton.config.messages`). Every sweep point must validate too.

Example::

    >>> from hpctriton import load_config
    >>> cfg = load_config("examples/local.yaml", overrides=["server.http_port=8000"])
    >>> cfg.models
    ['simple']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hpctriton.config import messages, yamlsrc
from hpctriton.config import overrides as ov
from hpctriton.config.headers import HIDDEN, holds_header_value
from hpctriton.config.models import Config
from hpctriton.errors import ConfigError

DEFAULT_CONFIG = "hpctriton.yaml"


def validate(data: Any, src: yamlsrc.Sourced | None, base_dir: Path) -> Config:
    """Validate raw config data (and each of its sweep points); errors name where
    each value was written (``src``: the file's lines and the ``--set`` arguments)."""
    source = src.source if src else None
    if data is None:
        raise ConfigError("the config is empty", source=source)
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of keys to values", source=source)
    try:
        config = Config.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        raise messages.config_error(exc, Config, src) from None
    config.set_source(src)
    try:
        config.points()  # every sweep point must validate too
    except ConfigError as exc:
        raise config.locate(exc, sweep=True) from None
    return config


def with_overrides(src: yamlsrc.Sourced, overrides: Sequence[str],
                   label: str = "--set") -> tuple[Any, yamlsrc.Sourced]:
    """``src``'s data with the ``key=value`` overrides applied, and ``src`` knowing
    which fields they set (an error there names ``--set key=value``, not a line)."""
    data = src.data if isinstance(src.data, dict) else {}
    for item in overrides:
        key, value = ov.parse_set(item)  # its errors name --set already
        secret = holds_header_value(ov.split_key(key), value)
        shown = HIDDEN if secret else item.partition("=")[2]
        origin = f"{label} {key}={shown}"
        try:
            data = ov.apply(data, key, value)
        except ConfigError as exc:
            raise ConfigError(exc.detail, source=origin) from None
        src = src.overridden(ov.split_key(key), origin)
    return data, src


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: Sequence[str] = ()) -> Config:
    """Read, override (``key=value`` strings, as ``--set`` takes them) and validate.

    Example::

        cfg = load_config("hpctriton.yaml", overrides=["server.grpc_port=30457"])
    """
    src = yamlsrc.load(path)
    data = src.data
    if overrides:
        data, src = with_overrides(src, overrides)
    return validate(data, src, Path(path).resolve().parent)


def config_from_data(
    data: Mapping[str, Any], base_dir: str | Path = ".", overrides: Sequence[str] = ()
) -> Config:
    """Validate a config given as plain data (a notebook, ``hpctriton check`` flags).

    Example::

        >>> cfg = config_from_data({"server": {"host": "gpu01", "grpc_port": 8001},
        ...                         "models": ["simple"], "checks": ["health"]})
        >>> cfg.check_names
        ['health']
    """
    merged = ov.apply_all(data, [ov.parse_set(item) for item in overrides])
    return validate(merged, None, Path(base_dir).resolve())

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
from hpctriton.config.models import Config
from hpctriton.errors import ConfigError

DEFAULT_CONFIG = "hpctriton.yaml"


def validate(data: Any, src: yamlsrc.Sourced | None, base_dir: Path) -> Config:
    """Validate raw config data (and each of its sweep points)."""
    source = src.source if src else None
    if data is None:
        raise ConfigError("the config is empty", source=source)
    if not isinstance(data, dict):
        raise ConfigError("the config must be a mapping of keys to values", source=source)
    try:
        config = Config.model_validate({**data, "base_dir": base_dir})
    except ValidationError as exc:
        raise messages.config_error(exc, Config, src) from None
    config.points()  # every sweep point must validate too
    return config


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: Sequence[str] = ()) -> Config:
    """Read, override (``key=value`` strings, as ``--set`` takes them) and validate.

    Example::

        cfg = load_config("hpctriton.yaml", overrides=["server.grpc_port=30457"])
    """
    src = yamlsrc.load(path)
    data = src.data
    items = [ov.parse_set(item) for item in overrides]
    if items:
        data = ov.apply_all(data if isinstance(data, dict) else {}, items)
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

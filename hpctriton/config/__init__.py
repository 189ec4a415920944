"""The config: models (:mod:`.models`), reading and error messages (:mod:`.loading`,
:mod:`.messages`), the JSON Schema (:mod:`.schema`), ``--set`` overrides and sweeps
(:mod:`.overrides`), YAML with line numbers (:mod:`.yamlsrc`)."""

from hpctriton.config.headers import literal_secret_headers
from hpctriton.config.loading import DEFAULT_CONFIG, config_from_data, load_config
from hpctriton.config.models import (
    SWEEPABLE,
    CheckItem,
    ClusterConfig,
    Config,
    ContainerConfig,
    load_tasks,
)
from hpctriton.config.schema import json_schema

__all__ = [
    "DEFAULT_CONFIG",
    "SWEEPABLE",
    "CheckItem",
    "ClusterConfig",
    "Config",
    "ContainerConfig",
    "config_from_data",
    "json_schema",
    "literal_secret_headers",
    "load_config",
    "load_tasks",
]

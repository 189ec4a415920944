"""The JSON Schema of the config file (``hpctriton schema``), from the models.

Clusters appear as a union discriminated by ``backend``: one model per registered
scheduler, each with that scheduler's options under its name.
"""

from __future__ import annotations

from typing import Any

from hpctriton.config.models import Config


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the config file (``hpctriton schema``).

    Example::

        >>> json_schema()["title"]
        'hpctriton config'
    """
    schema = Config.model_json_schema(mode="validation")
    schema.get("properties", {}).pop("base_dir", None)
    schema["title"] = "hpctriton config"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema

"""The one Jinja2 environment for job templates (files in ``templates/``).

Undefined names are errors, and the ``q`` / ``join_q`` filters are the only way a
value reaches shell text (see :mod:`hpctriton.quoting`).
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import jinja2

import hpctriton_probe

from . import quoting


def _load(name: str) -> str:
    # importlib.resources finds the templates both in a wheel and in an editable install
    # (where setup.cfg maps the top-level templates/ folder to hpctriton.templates).
    return resources.files("hpctriton.templates").joinpath(name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # shell text, not HTML: values go through the q filter instead
    )
    env.filters["q"] = quoting.q
    env.filters["join_q"] = quoting.join
    return env


def render(template: str, **values: Any) -> str:
    """Render ``templates/<template>``; ``version`` is always available."""
    values.setdefault("version", hpctriton_probe.__version__)
    return environment().get_template(template).render(**values)

"""The one Jinja2 environment for shell templates.

Templates are files that live beside the code that uses them, in a ``templates/``
folder of its package, and are named ``"<package>:<file>"``:
``"hpctriton.schedulers.slurm:submit.sh.j2"`` is
``hpctriton/schedulers/slurm/templates/submit.sh.j2``. A scheduler shipped as a package
of its own names its templates the same way.

Undefined names are errors, and the quoting filters are the only way a value reaches
shell text (see :mod:`hpctriton.shell.quoting`): ``q`` (one argument), ``join_q`` (an
argument list) and, for ``#SBATCH`` lines, which sbatch parses itself, ``sbatch_q``.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import TYPE_CHECKING, Any

import hpctriton_probe
from hpctriton.shell import quoting

if TYPE_CHECKING:
    import jinja2

# jinja2 is imported when a template is first rendered, not with this module: the
# scheduler modules that import it load on every config validation (``hpctriton
# check`` at a terminal included), which renders nothing.


def template_text(name: str) -> str:
    """The source of template ``"<package>:<file>"``."""
    import jinja2

    package, sep, file = name.partition(":")
    if not sep or not package or not file:
        raise jinja2.TemplateNotFound(f"{name} (templates are named '<package>:<file>')")
    try:
        folder = resources.files(package).joinpath("templates")
        return folder.joinpath(file).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise jinja2.TemplateNotFound(name) from exc


@functools.lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(template_text),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # shell text, not HTML: values go through the q filter instead
    )
    env.filters["q"] = quoting.q
    env.filters["join_q"] = quoting.join
    env.filters["sbatch_q"] = quoting.sbatch_quote
    return env


def render(template: str, **values: Any) -> str:
    """Render template ``"<package>:<file>"``; ``version`` is always available."""
    values.setdefault("version", hpctriton_probe.__version__)
    return environment().get_template(template).render(**values)

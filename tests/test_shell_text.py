"""Shell text comes only from templates, and values reach it only through quoting.

Python code builds argument lists; remote and job scripts are template files whose
values pass the quoting filters of :mod:`hpctriton.shell.quoting` (``q``, ``join_q``,
``sbatch_q``). These checks read the source, so a new f-string script fails here
before it reaches a cluster.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hpctriton.shell import templates as templating

PACKAGE = Path(__file__).resolve().parent.parent / "hpctriton"
QUOTING = PACKAGE / "shell" / "quoting.py"
#: Transport methods that take shell text.
SCRIPT_METHODS = {"run_script", "stream_lines", "fetch_tar_script"}
#: Template values written raw on purpose, and why.
RAW_BY_DESIGN = {
    "line": "prologue lines are shell code by design, checked to be one line each",
    "name": "environment variable names, checked by quoting.env_name (names cannot be quoted)",
    "key": "sbatch option names: hpctriton's own, or checked against simple-slurm's list",
    "script": "the transport's prefix wraps a script that was rendered from a template",
    "super()": "the parent template's block",
}
_VALUE = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_QUOTED = re.compile(r"\|\s*(q|join_q|sbatch_q(\(.*\))?)$")
_TEMPLATE_NAME = re.compile(r'"(hpctriton(?:\.[a-z_]+)*:[A-Za-z0-9_.-]+\.j2)"')


def python_sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p != QUOTING)


def template_files() -> list[Path]:
    return sorted(PACKAGE.rglob("templates/*.j2"))


def test_only_the_quoting_module_uses_shlex() -> None:
    offenders = []
    for path in python_sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                names = [node.value.id]
            if "shlex" in names:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, f"shlex outside hpctriton/shell/quoting.py: {offenders}"


def _built_inline(node: ast.expr) -> bool:
    """An f-string, a literal, a concatenation or a join/format call: shell text made
    in Python rather than rendered from a template."""
    if isinstance(node, (ast.JoinedStr, ast.BinOp)):
        return True
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("join", "format"))


def test_scripts_handed_to_the_transport_are_never_built_inline() -> None:
    offenders = []
    for path in python_sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SCRIPT_METHODS and node.args
                    and _built_inline(node.args[0])):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not offenders, f"scripts built in Python instead of a template: {offenders}"


@pytest.mark.parametrize("path", template_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_template_value_passes_a_quoting_filter(path: Path) -> None:
    text = re.sub(r"\{#.*?#\}", "", path.read_text(), flags=re.DOTALL)
    raw = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.lstrip()
        if stripped.startswith("#") and not stripped.startswith(("#SBATCH", "#!")):
            continue  # a comment of the rendered script
        for expression in _VALUE.findall(line):
            if not _QUOTED.search(expression) and expression not in RAW_BY_DESIGN:
                raw.append(f"line {number}: {{{{ {expression} }}}}")
    assert not raw, f"values that reach shell text unquoted: {raw}"


def test_every_template_the_code_names_exists() -> None:
    named = set()
    for path in python_sources():
        named |= set(_TEMPLATE_NAME.findall(path.read_text()))
    for path in template_files():
        named |= set(re.findall(r'extends "([^"]+)"', path.read_text()))
    assert named
    for name in sorted(named):
        assert templating.template_text(name), name

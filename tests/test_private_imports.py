"""No module of hpctriton or hpctriton_probe imports another module's private name
(``from hpctriton.report.plots import _style``): what two modules share is public.

ruff's PLC2701 (enabled in pyproject.toml) finds such imports across packages only;
this finds them within one, where they happened."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def private_imports(source: str) -> list[tuple[int, str, str]]:
    """``(line, module, name)`` of each private name ``source`` imports from a module
    (``__future__`` and dunders aside; a relative import counts too)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            module = "." * node.level + (node.module or "")
            found += [(node.lineno, module, alias.name) for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, alias.name) for alias in node.names
                      if any(part.startswith("_") and not part.startswith("__")
                             for part in alias.name.split("."))]
    return found


def test_the_finder_sees_a_private_import() -> None:
    assert private_imports("from a.b import _c, d\nfrom . import _e\nimport f._g\n"
                           "from __future__ import annotations\nfrom h import __all__\n") == [
        (1, "a.b", "_c"), (2, ".", "_e"), (3, "f._g", "f._g")]


def test_no_module_imports_a_private_name() -> None:
    found = [f"{path.relative_to(REPO)}:{line}: {name} from {module}"
             for package in ("hpctriton", "hpctriton_probe")
             for path in sorted((REPO / package).rglob("*.py"))
             for line, module, name in private_imports(path.read_text(encoding="utf-8"))]
    assert found == []

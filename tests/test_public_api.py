"""The public API: ``__all__`` is complete, and every public function documents itself."""

from __future__ import annotations

import inspect

import hpctriton


def test_all_lists_every_public_name_and_only_existing_ones() -> None:
    for name in hpctriton.__all__:  # imported on first use (PEP 562)
        assert hasattr(hpctriton, name), name
    public = {n for n, v in vars(hpctriton).items()
              if not n.startswith("_") and not inspect.ismodule(v)}
    assert public == set(hpctriton.__all__) - {"__version__"}
    assert set(hpctriton._LAZY) == set(hpctriton.__all__)
    assert set(dir(hpctriton)) >= set(hpctriton.__all__)


def test_importing_the_package_imports_none_of_its_dependencies() -> None:
    """``import hpctriton`` (and so every ``hpctriton.x`` import) starts nothing heavy:
    each public name is imported on first use."""
    import subprocess
    import sys

    code = ("import sys, hpctriton, hpctriton.errors; "
            "print(' '.join(m for m in ('pydantic', 'jinja2', 'rich', 'paramiko', 'yaml', "
            "'hpctriton.api', 'hpctriton.config') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
    assert hpctriton.Run.__name__ == "Run"  # and the names still resolve


def test_public_functions_have_typed_signatures_and_examples() -> None:
    for name in hpctriton.__all__:
        obj = getattr(hpctriton, name)
        if inspect.isfunction(obj):
            assert obj.__doc__ and "Example" in obj.__doc__, f"{name} needs an example"
            hints = inspect.signature(obj)
            assert hints.return_annotation is not inspect.Signature.empty, name
        elif inspect.isclass(obj):
            assert obj.__doc__, f"{name} needs a docstring"

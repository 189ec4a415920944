"""The public API: ``__all__`` is complete, and every public function documents itself."""

from __future__ import annotations

import inspect

import hpctriton


def test_all_lists_every_public_name_and_only_existing_ones() -> None:
    public = {n for n, v in vars(hpctriton).items()
              if not n.startswith("_") and not inspect.ismodule(v)}
    assert public == set(hpctriton.__all__) - {"__version__"}
    for name in hpctriton.__all__:
        assert hasattr(hpctriton, name), name


def test_public_functions_have_typed_signatures_and_examples() -> None:
    for name in hpctriton.__all__:
        obj = getattr(hpctriton, name)
        if inspect.isfunction(obj):
            assert obj.__doc__ and "Example" in obj.__doc__, f"{name} needs an example"
            hints = inspect.signature(obj)
            assert hints.return_annotation is not inspect.Signature.empty, name
        elif inspect.isclass(obj):
            assert obj.__doc__, f"{name} needs a docstring"

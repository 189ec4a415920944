"""The documentation: a README read in five minutes, and reference pages that cannot drift.

The site itself is built with ``mkdocs build --strict`` by ``scripts/test`` (broken links
and anchors, pages missing from the nav fail there); these tests check what a build
cannot: that the generated config reference covers every key of the schema, with a
description, and that the README stays short and points at pages that exist.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
import yaml

from hpctriton.config.schema import json_schema
from hpctriton_probe.spec import CHECK_OPTIONS

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "config_reference_hook", DOCS / "hooks" / "config_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hook() -> ModuleType:
    return _hook()


@pytest.fixture(scope="module")
def reference(hook: ModuleType) -> str:
    return str(hook.render())


def _sections(markdown: str) -> dict[str, list[tuple[str, str]]]:
    """Heading -> the (key, description) rows of its table."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in markdown.splitlines():
        if line.startswith("#"):
            current = line.lstrip("#").strip()
            sections.setdefault(current, [])
        row = re.match(r"^\| `([^`]+)` \|.*\| (.*) \|$", line)
        if row:
            sections[current].append((row.group(1), row.group(2).strip()))
    return sections


def _keys(sections: dict[str, list[tuple[str, str]]], heading: str) -> set[str]:
    return {key for key, _ in sections[heading]}


def test_config_reference_covers_every_top_level_key(reference: str) -> None:
    schema = json_schema()
    top = _keys(_sections(reference), "Top-level keys")
    assert set(schema["properties"]) <= top, set(schema["properties"]) - top
    assert {"server", "models", "checks", "clusters", "runs_dir"} <= top


def test_config_reference_covers_every_nested_key(reference: str) -> None:
    sections = _sections(reference)
    everywhere = {key for rows in sections.values() for key, _ in rows}
    schema = json_schema()
    for name, definition in schema["$defs"].items():
        missing = set(definition.get("properties", {})) - everywhere
        assert not missing, f"{name}: {missing} not on the config reference page"
    assert _keys(sections, "`server`") == set(schema["$defs"]["ServerSpec"]["properties"])
    # every check has its section, with every option of its dataclass
    for check, options in CHECK_OPTIONS.items():
        heading = f"`checks: {check}`"
        assert heading in sections, heading
        fields = set(getattr(options, "__dataclass_fields__", {}))
        assert fields <= _keys(sections, heading), (check, fields - _keys(sections, heading))
    for backend in ("slurm", "dicos", "local"):
        assert f"`clusters.<name>.{backend}`" in sections


def test_every_key_on_the_reference_has_a_description(reference: str) -> None:
    undocumented = [f"{heading}: {key}" for heading, rows in _sections(reference).items()
                    for key, description in rows if not description]
    assert not undocumented, (
        "keys without a description (add a `#:` comment above the field in its class): "
        + ", ".join(undocumented))


def test_descriptions_kept_on_the_page_name_keys_that_exist(hook: ModuleType,
                                                            reference: str) -> None:
    sections = _sections(reference)
    # the page's headings as the paths the hook names its tables by
    paths = {"`clusters`": "clusters.<name>"}
    rows = {(paths.get(heading, heading.strip("`").removeprefix("checks: ")), key)
            for heading, keys in sections.items() for key, _ in keys}
    for path in hook.DESCRIBED_HERE:
        where, _, key = path.rpartition(".")
        if where == "*":
            assert any(k == key for _, k in rows), path
        elif where == "":
            assert ("Top-level keys", key) in rows, path
        else:
            assert (where, key) in rows, f"{path}: no such key on the page any more"


def test_the_reference_page_is_generated_by_the_hook(hook: ModuleType) -> None:
    page = (DOCS / "config-reference.md").read_text()
    assert hook.MARKER in page
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert "docs/hooks/config_reference.py" in config["hooks"]
    built = hook.on_page_markdown(page, None, None, None)
    assert hook.MARKER not in built
    assert "| `runs_dir` |" in built and "### `checks: load`" in built


def test_a_key_added_to_the_schema_appears_on_the_page(hook: ModuleType) -> None:
    schema: dict[str, Any] = json_schema()
    schema["properties"]["brand_new"] = {"type": "integer", "default": 3,
                                         "description": "A key from tomorrow."}
    rendered = hook.render(schema)
    assert "| `brand_new` | integer | `3` | A key from tomorrow. |" in rendered


def test_the_cli_page_documents_the_real_click_group() -> None:
    page = (DOCS / "cli.md").read_text()
    module = re.search(r":module: (\S+)", page)
    command = re.search(r":command: (\S+)", page)
    assert "::: mkdocs-click" in page and module and command
    group = getattr(importlib.import_module(module.group(1)), command.group(1))
    assert isinstance(group, click.Group) and "submit" in group.commands


def test_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())

    def pages(nav: Any) -> set[str]:
        if isinstance(nav, str):
            return {nav}
        if isinstance(nav, list):
            return set().union(*(pages(item) for item in nav))
        return set().union(*(pages(value) for value in nav.values()))

    on_disk = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert on_disk == pages(config["nav"])


def test_readme_is_read_in_five_minutes_and_points_into_the_docs() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 6 * 1024, len(readme.encode())
    for command in ("./scripts/demo", "./scripts/test"):
        assert command in readme
    assert (ROOT / "scripts" / "demo").is_file() and (ROOT / "scripts" / "test").is_file()
    # the demo's next commands: how to get `hpctriton` on PATH
    assert ". .venv/bin/activate" in readme and ".venv/bin/hpctriton" in readme
    # the honest notes stay visible
    assert "emulator" in readme and "stand-in" in readme
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert len(links) >= 10
    for link in links:
        assert (ROOT / link).is_file(), link

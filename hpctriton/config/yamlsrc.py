"""YAML loading that remembers where every value came from.

pydantic reports errors by field path; users fix files by line. This module keeps a
map from field path to line so a config error can say ``hpctriton.yaml:12:
server.http_port: …``. It also refuses duplicate keys, which PyYAML silently merges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hpctriton.errors import ConfigError

PathKey = tuple[Any, ...]


@dataclass
class Sourced:
    """Data read from a YAML file, with the line (1-based) of each field path."""

    data: Any
    source: str
    lines: dict[PathKey, int] = field(default_factory=dict)
    #: Field paths whose value came from elsewhere (``--set key=value``, a flag) -> what
    #: gave it; an error under such a path names that, not the file's line.
    origins: dict[PathKey, str] = field(default_factory=dict)

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path`` or of its nearest parent that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def where(self, path: PathKey) -> tuple[str, int | None]:
        """Where the value at ``path`` was written: (``--set …``, None) when an
        override set it or a parent of it, else (the file, its line)."""
        path = tuple(path)
        for end in range(len(path), 0, -1):
            origin = self.origins.get(path[:end])
            if origin is not None:
                return origin, None
        if path not in self.lines:
            # a level the file does not have, made by an override below it
            made = [o for key, o in self.origins.items() if key[:len(path)] == path]
            if made:
                return made[-1], None
        return self.source, self.line_of(path)

    def overridden(self, path: PathKey, origin: str) -> Sourced:
        """A copy that says ``origin`` gave ``path``."""
        return Sourced(self.data, self.source, self.lines, {**self.origins, tuple(path): origin})


def _walk(node: yaml.Node, path: PathKey, lines: dict[PathKey, int], source: str) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                where = ".".join(str(p) for p in (*path, key))
                raise ConfigError(
                    f"duplicate key (first on line {seen[key]})",
                    source=source, field=where, line=line,
                )
            seen[key] = line
            lines[(*path, key)] = line
            _walk(value_node, (*path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines, source)


#: libyaml's loader where PyYAML has it (about ten times faster on a config holding a
#: sweep of thousands of values), else the pure-Python one; the same safe constructors.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (for lines and duplicate keys) and the data, from one parse."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def loads(text: str, source: str = "<string>") -> Sourced:
    """Parse YAML text; errors become ``ConfigError`` with the line."""
    try:
        node, data = _parse(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", source=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", source=source) from None
    lines: dict[PathKey, int] = {}
    if node is not None:
        try:
            _walk(node, (), lines, source)
        except RecursionError:
            raise ConfigError("invalid YAML: an anchor refers to itself", source=source) from None
    return Sourced(data=data, source=source, lines=lines)


def load(path: str | Path) -> Sourced:
    """Read and parse a YAML file; an unreadable file is a ``ConfigError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read file: {exc}", source=str(path)) from None
    return loads(text, str(path))

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

    def line_of(self, path: PathKey) -> int | None:
        """The line of ``path`` or of its nearest parent that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


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


def loads(text: str, source: str = "<string>") -> Sourced:
    """Parse YAML text; errors become ``ConfigError`` with the line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
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

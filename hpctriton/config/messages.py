"""pydantic's validation errors as a user reads them: the field path as written in the
file, its YAML line, a plain message and, for an unknown key, the valid ones.

Generic over the model: the config, a check's options and a cluster on its own all
report through :func:`config_error`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, Protocol, Union, runtime_checkable

from pydantic import BaseModel, ValidationError

from hpctriton.config.yamlsrc import Sourced
from hpctriton.errors import ConfigError

#: Errors beyond the first that a message lists ("also …").
MORE_ERRORS = 5


@runtime_checkable
class TaggedUnion(Protocol):
    """``Annotated`` metadata of a union pydantic picks a member of by ``tag_key``.

    pydantic puts the tag into error locations (``clusters.a.slurm.slurm.partition``);
    the file has no such level, so paths skip it.
    """

    tag_key: str

    def variant(self, tag: str) -> Any:
        """The member for ``tag`` (None when there is none)."""

    def invalid_tag(self, tag: str) -> str:
        """The message for a tag no member has."""


def _tagged_union(tp: Any) -> TaggedUnion | None:
    if typing.get_origin(tp) is Annotated:
        for meta in typing.get_args(tp)[1:]:
            if isinstance(meta, TaggedUnion):
                return meta
    return None


def _unwrap_optional(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _field_type(model: Any, name: Any) -> Any:
    if isinstance(model, type) and issubclass(model, BaseModel):
        info = model.model_fields.get(name)
        return info.annotation if info else None
    if dataclasses.is_dataclass(model):
        return typing.get_type_hints(model).get(name)
    return None


def _child(tp: Any, part: Any) -> Any:
    tp = _unwrap_optional(tp)
    if typing.get_origin(tp) is Annotated:
        tp = typing.get_args(tp)[0]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is dict and args:
        return args[1]  # part is a key of the mapping (a cluster name, say)
    if origin is list and args:
        return args[0]
    return _field_type(tp, part)


def _follow(model: Any, loc: Sequence[Any]) -> tuple[tuple[Any, ...], Any]:
    """Walk ``loc`` from ``model``: the path as the file writes it (tags dropped) and
    the type reached there (None once the walk is lost)."""
    path: list[Any] = []
    current = model
    for part in loc:
        union = _tagged_union(current)
        if union is not None:
            current = union.variant(str(part))
            continue
        path.append(part)
        current = None if current is None else _child(current, part)
    return tuple(path), current


def _field_names(model: Any) -> list[str] | None:
    model = _unwrap_optional(model)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [n for n, f in model.model_fields.items() if not f.exclude]
    if dataclasses.is_dataclass(model) and isinstance(model, type):
        return [f.name for f in dataclasses.fields(model)]
    return None


def _location(err: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(p for p in err.get("loc", ()) if not str(p).startswith("function-"))


def error_path(err: Mapping[str, Any], model: Any) -> tuple[Any, ...]:
    """The field path of one pydantic error, as the file writes it."""
    path, reached = _follow(model, _location(err))
    kind = err.get("type")
    if kind == "nested":
        path += tuple(err.get("ctx", {}).get("subloc", ()))
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        union = _tagged_union(reached)
        if union is not None:
            path += (union.tag_key,)
    return path


def plain_message(err: Mapping[str, Any], model: Any = None) -> str:
    """A user-facing message for one pydantic error."""
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        valid = None
        if model is not None:
            valid = _field_names(_follow(model, _location(err)[:-1])[1])
        msg = "unknown key"
        if valid:
            msg += f"; valid keys: {', '.join(valid)}"
    elif kind in ("missing", "union_tag_not_found"):
        msg = "required field is missing"
    elif kind == "union_tag_invalid" and model is not None:
        union = _tagged_union(_follow(model, _location(err))[1])
        if union is not None:
            msg = union.invalid_tag(str(err.get("ctx", {}).get("tag", "")))
    elif "input" in err and kind not in ("nested", "value_error"):
        msg += f" (got {err['input']!r})"
    return msg


def dotted(path: Iterable[Any]) -> str:
    """``("checks", 0, "keepalive")`` -> ``checks[0].keepalive``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def config_error(exc: ValidationError, model: Any, src: Sourced | None = None, *,
                 sweep_point: Mapping[str, Any] | None = None) -> ConfigError:
    """One :class:`ConfigError` for a failed validation: the first error with its
    field and line, and the next few as "also" lines."""
    errors = exc.errors()
    path = error_path(errors[0], model)
    message = plain_message(errors[0], model)
    if sweep_point:
        message += " (in sweep point " + ", ".join(
            f"{k}={v!r}" for k, v in sweep_point.items()) + ")"
    for other in errors[1:1 + MORE_ERRORS]:
        other_path = error_path(other, model)
        other_line = src.line_of(other_path) if src else None
        at = f" (line {other_line})" if other_line else ""
        message += f"\n  also {dotted(other_path)}{at}: {plain_message(other, model)}"
    if len(errors) > 1 + MORE_ERRORS:
        message += f"\n  … and {len(errors) - 1 - MORE_ERRORS} more"
    line = src.line_of(path) if src else None
    return ConfigError(message, source=src.source if src else None,
                       field=dotted(path) or None, line=line)

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

from hpctriton.config.headers import HIDDEN, is_header_value
from hpctriton.config.yamlsrc import Sourced
from hpctriton.errors import ConfigError

#: Errors one message lists (one line each); more are counted.
MAX_ERRORS = 20


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


def _spec_error(err: Mapping[str, Any]) -> Any:
    """The probe's ``SpecError`` behind a ``value_error`` (None for any other error):
    it names the field it is about (``http_port``) and may hold several problems."""
    if err.get("type") != "value_error":
        return None
    error = (err.get("ctx") or {}).get("error")
    return error if hasattr(error, "problems") else None


def _field_parts(field: str | None) -> tuple[str, ...]:
    return tuple(field.split(".")) if field else ()


def _without_field(message: str, field: str | None) -> str:
    """``"http_port must be …"`` -> ``"must be …"`` once the path names ``http_port``."""
    if field:
        for prefix in (f"{field}: ", f"{field} "):
            if message.startswith(prefix):
                return message[len(prefix):]
    return message


def error_path(err: Mapping[str, Any], model: Any) -> tuple[Any, ...]:
    """The field path of one pydantic error, as the file writes it: down to the field
    a model-level check (``ServerSpec``: "http_port must be …") is about."""
    path, reached = _follow(model, _location(err))
    kind = err.get("type")
    if kind == "nested":
        path += tuple(err.get("ctx", {}).get("subloc", ()))
    elif kind in ("union_tag_invalid", "union_tag_not_found"):
        union = _tagged_union(reached)
        if union is not None:
            path += (union.tag_key,)
    spec_error = _spec_error(err)
    if spec_error is not None:
        path += _field_parts(spec_error.field)
    return path


def plain_message(err: Mapping[str, Any], model: Any = None) -> str:
    """A user-facing message for one pydantic error."""
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    spec_error = _spec_error(err)
    if spec_error is not None:
        msg = _without_field(msg, spec_error.field)
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
        hidden = model is not None and is_header_value(error_path(err, model))
        msg += f" (got {HIDDEN if hidden else _printable(repr(err['input']))})"
    return msg


def _printable(text: str) -> str:
    # a lone surrogate in an echoed input would make printing the message itself fail
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def dotted(path: Iterable[Any]) -> str:
    """``("checks", 0, "keepalive")`` -> ``checks[0].keepalive``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _entries(err: Mapping[str, Any], model: Any) -> list[tuple[tuple[Any, ...], str]]:
    """(field path, message) of one pydantic error; a ``SpecError`` that holds several
    problems (two bad ports of one server) gives one entry each."""
    spec_error = _spec_error(err)
    if spec_error is not None and spec_error.problems:
        base, _ = _follow(model, _location(err))
        return [((*base, *_field_parts(p.field)), _without_field(str(p), p.field))
                for p in spec_error.problems]
    return [(error_path(err, model), plain_message(err, model))]


def undotted(text: str) -> tuple[Any, ...]:
    """``checks[0].keepalive`` -> ``("checks", 0, "keepalive")`` (:func:`dotted` undone)."""
    parts: list[Any] = []
    for piece in text.split("."):
        name, *indexes = piece.split("[")
        if name:
            parts.append(name)
        for index in indexes:
            index = index.rstrip("]")
            parts.append(int(index) if index.isdigit() else index)
    return tuple(parts)


def config_error(exc: ValidationError, model: Any, src: Sourced | None = None, *,
                 sweep_point: Mapping[str, Any] | None = None) -> ConfigError:
    """One :class:`ConfigError` for a failed validation, holding every error (up to
    :data:`MAX_ERRORS`) in the file's order, each with its full field path and where it
    was written: the file's line, or the ``--set`` argument that gave the value."""
    entries: list[tuple[tuple[Any, ...], str]] = []
    for err in exc.errors():
        for entry in _entries(err, model):
            if entry not in entries:
                entries.append(entry)
    suffix = ""
    if sweep_point:
        suffix = " (in sweep point " + ", ".join(
            f"{k}={HIDDEN if is_header_value([k]) else _printable(repr(v))}"
            for k, v in sweep_point.items()) + ")"
    found: list[ConfigError] = []
    for path, message in entries:
        source, line = src.where(path) if src else (None, None)
        found.append(ConfigError(message + suffix, source=source,
                                 field=dotted(path) or None, line=line))
    # the file's order; values from --set (no line) after the file's
    found.sort(key=lambda e: (e.line is None, e.line or 0))
    first, *rest = found[:MAX_ERRORS]
    if len(found) > MAX_ERRORS:
        rest.append(ConfigError(f"… and {len(found) - MAX_ERRORS} more errors"))
    return ConfigError(first.detail, source=first.source, field=first.field,
                       line=first.line, also=rest)

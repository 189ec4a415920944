"""MkDocs hook: the config reference, rendered from the config's JSON Schema at build time.

``docs/config-reference.md`` holds the marker below; :func:`on_page_markdown` replaces it
with one table per object of the schema (``hpctriton schema``): every key with its type,
default and description. So the page cannot drift from the models: a key added to the
models appears here at the next build, and ``tests/test_docs.py`` checks that every key
of the schema is on the page.

Descriptions come from the schema where it has one, else from the ``#:`` comment above
the field in the class that defines it (the models' own documentation, read as Sphinx's
autodoc reads it). Defaults come from the schema, else from the field's default factory.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import textwrap
from collections.abc import Iterator
from typing import Any

MARKER = "<!-- hpctriton:config-reference -->"

Schema = dict[str, Any]

#: Descriptions of keys whose class has no ``#:`` comment above the field (fields of the
#: probe's dataclasses and of the config models, which this page does not edit), by the
#: path this page shows them under (``*`` for any table). A field that the docstring of
#: its class names (````key````) is described there, above its table.
#: ``tests/test_docs.py`` checks that each entry here still names a key of the schema,
#: and that every key has a description.
DESCRIBED_HERE: dict[str, str] = {
    "models": "The models under test; every model is checked by every check.",
    "checks": "Check names, or one-key maps of a name to its options. Durations are "
              "seconds, in keys ending `_s`. See [`checks`](#checks).",
    "sweep": "A Cartesian product of values, one array task per point. Keys may be "
             "`server.*`, `models`, `checks` and `probe.*` (what differs between the "
             "tasks of one job); every point is validated like the file.",
    "clusters": "Where jobs go, by name: each cluster's `backend` picks its scheduler. "
                "See [`clusters`](#clusters).",
    "server.host": "Host name or address of the Triton server, as the job reaches it.",
    "server.http_port": "HTTP port; at least one of `http_port` / `grpc_port`.",
    "server.grpc_port": "gRPC port; at least one of `http_port` / `grpc_port`.",
    "server.metrics_port": "Prometheus metrics port; without it the metrics check is "
                           "skipped, with the reason.",
    "server.tls.ca": "CA certificate file the server's certificate must chain to "
                     "(default: the system's CAs).",
    "server.tls.cert": "Client certificate file (mutual TLS); given together with `key`.",
    "server.tls.key": "Client key file (mutual TLS); given together with `cert`.",
    "server.tls.verify": "Check that the server's certificate chains to `ca` and names "
                         "the host; `false` turns both checks off.",
    "*.protocols": "The protocols the check runs over: `http`, `grpc`.",
    "keepalive.keepalive_time_s": "tritonclient `KeepAliveOptions.keepalive_time_ms`, "
                                  "in seconds.",
    "keepalive.keepalive_timeout_s": "tritonclient `KeepAliveOptions.keepalive_timeout_ms`, "
                                     "in seconds.",
    "keepalive.permit_without_calls": "tritonclient "
                                      "`KeepAliveOptions.keepalive_permit_without_calls`.",
    "keepalive.max_pings_without_data": "tritonclient "
                                        "`KeepAliveOptions.http2_max_pings_without_data`.",
    "infer.batch_size": "Batch size of the inference request.",
    "metrics.path": "Path of the metrics page on `server.metrics_port` (HTTP only).",
    "load.protocol": "`grpc` or `http`: the load takes one protocol, not `protocols`.",
    "load.batch_size": "Batch size of every request.",
    "load.slo.ttft_ms": "Bound on the time to first token, in ms.",
    "load.slo.itl_ms": "Bound on the request's mean gap between tokens, in ms.",
    "load.slo.e2e_ms": "Bound on the end-to-end latency, in ms.",
    "probe.timeout_s": "Bound on every call of a check without a `timeout_s` of its own.",
    "container.runtime": "`singularity` or `apptainer` start the image; `none` runs the "
                         "cluster's `python` without a container.",
    "container.image": "The tritonclient image (a `.sif` path on the cluster).",
    "clusters.<name>.backend": "The scheduler: a registered scheduler's name.",
    "clusters.<name>.user": "SSH user (default: `~/.ssh/config`'s, else the local user "
                            "name).",
    "clusters.<name>.port": "SSH port (default: `~/.ssh/config`, else 22).",
    "clusters.<name>.key": "SSH private key file (keys also come from the agent).",
    "clusters.<name>.known_hosts": "The user's known_hosts file (default: "
                                   "`UserKnownHostsFile` of `~/.ssh/config`, else "
                                   "`~/.ssh/known_hosts`); the global files are read too.",
    "clusters.<name>.connect_timeout_s": "Bound on connecting and on the SSH greeting.",
    "clusters.<name>.slurm.job_name": "`#SBATCH --job-name`.",
    "clusters.<name>.slurm.partition": "`#SBATCH --partition`.",
    "clusters.<name>.slurm.account": "`#SBATCH --account`.",
    "clusters.<name>.slurm.qos": "`#SBATCH --qos`.",
    "clusters.<name>.slurm.nodes": "`#SBATCH --nodes`.",
    "clusters.<name>.slurm.ntasks": "`#SBATCH --ntasks`.",
    "clusters.<name>.slurm.cpus_per_task": "`#SBATCH --cpus-per-task`.",
    "clusters.<name>.slurm.mem": "`#SBATCH --mem`.",
    "clusters.<name>.slurm.gres": "`#SBATCH --gres`.",
    "clusters.<name>.dicos.require_cores": "`--requireCores`: cores per job.",
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs event: put the rendered reference where the page has the marker."""
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, render())


def render(schema: Schema | None = None) -> str:
    """The reference as Markdown: the top-level keys, then one section per object."""
    if schema is None:
        from hpctriton.config.schema import json_schema

        schema = json_schema()
    return "\n".join(_Renderer(schema).sections())


# ------------------------------------------------------------------ the classes


def _classes() -> dict[str, type]:
    """Schema title -> the class it was made from (for ``#:`` comments and defaults)."""
    from hpctriton.config import models
    from hpctriton.schedulers import registry
    from hpctriton_probe import spec

    found: dict[str, type] = {}
    for module in (spec, models):
        for value in vars(module).values():
            if inspect.isclass(value) and value.__module__ == module.__name__:
                found[value.__name__] = value
    union = models.SchedulerUnion()
    for name in registry.names():
        cluster = union.variant(name)
        if cluster is not None:
            found[cluster.__name__] = cluster
        try:
            options = registry.load(name).options_model
        except Exception:  # noqa: BLE001 - a scheduler that cannot load has no options here
            continue
        found[options.__name__] = options
    found["hpctriton config"] = models.Config
    return found


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> its ``#:`` comment, from ``cls`` and its bases (nearest wins)."""
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue  # built in, or made at run time (a scheduler's cluster model)
        pending: list[str] = []
        for line in source.splitlines()[1:]:
            stripped = line.strip()
            if stripped.startswith("#:"):
                pending.append(stripped[2:].strip())
                continue
            field = re.match(r"^ {4}(\w+)\s*:", line)
            if field and pending:
                comments[field.group(1)] = " ".join(pending)
            pending = []
    return comments


def _factory_default(cls: type | None, name: str) -> Any:
    """The value a field's default factory makes, or ``dataclasses.MISSING``."""
    if cls is None:
        return dataclasses.MISSING
    model_fields = getattr(cls, "model_fields", None)
    if isinstance(model_fields, dict) and name in model_fields:
        factory = model_fields[name].default_factory
        if factory is not None:
            return factory()
    if dataclasses.is_dataclass(cls):
        for field in dataclasses.fields(cls):
            if field.name == name and field.default_factory is not dataclasses.MISSING:
                return field.default_factory()
    return dataclasses.MISSING


# ------------------------------------------------------------------ rendering


class _Renderer:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.defs: dict[str, Schema] = schema.get("$defs", {})
        self.classes = _classes()

    # -- schema helpers

    def resolve(self, node: Schema) -> Schema:
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return self.defs[ref.removeprefix("#/$defs/")]
        return node

    def members(self, node: Schema) -> list[Schema]:
        """The alternatives of a node (``anyOf``/``oneOf``), resolved; itself if none."""
        node = self.resolve(node)
        alternatives = node.get("anyOf") or node.get("oneOf")
        if alternatives:
            return [self.resolve(m) for m in alternatives]
        return [node]

    def object_of(self, node: Schema) -> Schema | None:
        """The object with ``properties`` a key holds (through a ``$ref`` or ``| null``)."""
        objects = [m for m in self.members(node) if m.get("properties")]
        return objects[0] if len(objects) == 1 else None

    def type_of(self, node: Schema) -> str:
        node = self.resolve(node)
        if "const" in node:
            return f"`{json.dumps(node['const'])}`"
        if "enum" in node:
            return " | ".join(f"`{json.dumps(v)}`" for v in node["enum"])
        alternatives = node.get("anyOf") or node.get("oneOf")
        if alternatives:
            return " or ".join(self.type_of(m) for m in alternatives)
        kind = node.get("type")
        if kind == "array":
            items = node.get("items") or {}
            inner = self.type_of(items) if items else "any"
            text = f"list of {inner}"
        elif kind == "object" and node.get("properties"):
            text = f"object ({node.get('title', 'see below')})"
        elif kind == "object":
            values = node.get("additionalProperties")
            inner = self.type_of(values) if isinstance(values, dict) and values else "any"
            text = f"map of string to {inner}"
        elif kind is None:
            text = "any"
        else:
            text = str(kind)
        return text + self.bounds(node)

    @staticmethod
    def bounds(node: Schema) -> str:
        parts = []
        for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"),
                          ("maximum", "≤"), ("exclusiveMaximum", "<")):
            if key in node:
                parts.append(f"{sign} {node[key]}")
        if "minItems" in node:
            parts.append(f"at least {node['minItems']} item(s)")
        return f" ({', '.join(parts)})" if parts else ""

    # -- one table

    def rows(self, node: Schema, path: str) -> Iterator[str]:
        cls = self.classes.get(node.get("title", ""))
        comments = field_comments(cls) if cls is not None else {}
        required = set(node.get("required", []))
        for key, prop in node.get("properties", {}).items():
            if prop.get("readOnly"):
                continue
            default = self.default(prop, cls, key, key in required)
            where = f"{path}.{key}" if path else key
            description = (prop.get("description") or comments.get(key)
                           or DESCRIBED_HERE.get(where) or DESCRIBED_HERE.get(f"*.{key}"))
            if not description and f"``{key}``" in node.get("description", ""):
                description = "As the text above the table says."
            if not description:
                target = self.object_of(prop)
                description = target.get("description", "") if target else ""
            nested = self.object_of(prop)
            if nested is not None:
                description = (description + " " if description else "") + \
                    f"See [`{where}`](#{slug(where)})."
            yield (f"| `{key}` | {_cell(self.type_of(prop))} | {_cell(default)} "
                   f"| {_cell(_markdown(description))} |")

    def default(self, prop: Schema, cls: type | None, key: str, required: bool) -> str:
        if required:
            return "**required**"
        if "default" in prop:
            return f"`{json.dumps(prop['default'])}`"
        value = _factory_default(cls, key)
        if value is dataclasses.MISSING:
            return "its defaults" if self.object_of(prop) is not None else "–"
        if dataclasses.is_dataclass(value) or hasattr(value, "model_dump"):
            return "its defaults"
        if isinstance(value, list):
            value = [getattr(v, "name", v) for v in value]
        try:
            return f"`{json.dumps(value)}`"
        except TypeError:
            return f"`{value!r}`"

    def table(self, node: Schema, path: str) -> list[str]:
        return ["| key | type | default | description |", "|---|---|---|---|",
                *self.rows(node, path), ""]

    # -- the page

    def sections(self) -> Iterator[str]:
        root = self.schema
        yield "## Top-level keys"
        yield ""
        if root.get("description"):
            yield _markdown(root["description"].split("\n\n")[0])
            yield ""
        yield from self.table(root, "")
        for key, prop in root.get("properties", {}).items():
            if key == "checks":
                yield from self.checks(prop)
            elif key == "clusters":
                yield from self.clusters(prop)
            else:
                yield from self.nested(key, prop)

    def nested(self, path: str, prop: Schema, level: int = 2) -> Iterator[str]:
        node = self.object_of(prop)
        if node is None:
            return
        yield f"{'#' * level} `{path}`"
        yield ""
        if node.get("description"):
            yield _markdown(node["description"])
            yield ""
        yield from self.table(node, path)
        for key, child in node.get("properties", {}).items():
            yield from self.nested(f"{path}.{key}", child, level + 1)

    def checks(self, prop: Schema) -> Iterator[str]:
        yield "## `checks`"
        yield ""
        yield ("Each entry is a check's name, or a map of one check name to its options "
               "(`{keepalive: {period_s: 30}}`). The checks and their options:")
        yield ""
        for member in self.members(prop.get("items", {})):
            for name, options in member.get("properties", {}).items():
                node = self.object_of(options)
                if node is None:
                    continue
                yield f"### `checks: {name}`"
                yield ""
                if node.get("description"):
                    yield _markdown(node["description"])
                    yield ""
                yield from self.table(node, name)
                for key, child in node.get("properties", {}).items():
                    yield from self.nested(f"{name}.{key}", child, 4)

    def clusters(self, prop: Schema) -> Iterator[str]:
        variants = self.members(prop.get("additionalProperties", {}))
        shared = {k: v for k, v in variants[0].get("properties", {}).items()
                  if k != "backend" and all(w.get("properties", {}).get(k) == v
                                            for w in variants)}
        yield "## `clusters`"
        yield ""
        yield ("A map of cluster names to clusters. `backend` picks the scheduler "
               "(" + ", ".join(f"`{_backend(v)}`" for v in variants) + "); the keys "
               "below are the same for every backend, and each backend adds its options "
               "under its own name.")
        yield ""
        own_options = {}
        for variant in variants:
            name = _backend(variant)
            if name in variant.get("properties", {}):
                own_options[name] = {
                    **variant["properties"][name],
                    "description": f"The {name} scheduler's options (with `backend: {name}`)."}
        base = {"title": "ClusterConfig",
                "properties": {"backend": {"enum": [_backend(v) for v in variants]},
                               **shared, **own_options},
                "required": ["backend"]}
        yield from self.table(base, "clusters.<name>")
        for variant in variants:
            own = {k: v for k, v in variant.get("properties", {}).items()
                   if k not in shared and k != "backend"}
            for key, child in own.items():
                yield from self.nested(f"clusters.<name>.{key}", child, 3)


def _backend(variant: Schema) -> str:
    return str(variant.get("properties", {}).get("backend", {}).get("const", "?"))


def slug(path: str) -> str:
    """The anchor MkDocs gives the heading `` `path` `` (Python-Markdown's default slugify)."""
    text = re.sub(r"[^\w\s-]", "", path).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _markdown(text: str) -> str:
    """Docstring text as Markdown: RST literals become code spans, on one line."""
    return " ".join(text.replace("``", "`").split())


def _cell(text: str) -> str:
    return re.sub(r"(?<!\\)\|", r"\\|", text.replace("\n", " "))

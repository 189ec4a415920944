"""``hpctriton check``: run the probe here and now, in this process.

The same code that runs inside a job (``hpctriton_probe.runner.run_task``), fed with a
config built from a file, from flags, or both: ``--http-url host:port`` and a model are
enough to check a server without writing any YAML.

With flags only, messages name the flags the user wrote, not config fields they never
saw: a missing ``--model`` says so, a bad ``--http-url`` port names ``--http-url``, and
the metrics check skipped for want of a port says "no --metrics-url given"
(:func:`flag_names`).

A check at a terminal should cost no more than the seed's two tritonclient programs
(``benchmarks/probe_vs_seed.py``). With flags only there is no config to validate: the
flags become the probe's task directly (:func:`flags_task`, which the probe's own spec
classes check), so nothing but click and the probe is imported. With a config file (or
``--set``) the config models and the scheduler registry load, as for every command that
reads a config; the template engine and the reports never do.

Example::

    >>> from hpctriton.tools.check import check, config_for_check
    >>> config = config_for_check(http_url="localhost:8000", models=["simple"])
    >>> check(config).ok
    True
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctriton.errors import ConfigError, UsageError
from hpctriton_probe.spec import (
    CHECK_OPTIONS,
    DEFAULT_CHECKS,
    CheckSpec,
    ServerSpec,
    SpecError,
    TaskSpec,
)

if TYPE_CHECKING:
    from hpctriton.config import Config
    from hpctriton.report.notebook import Results
    from hpctriton_probe.schema import ResultEntry, ResultsDocument

#: ``hpctriton.config.DEFAULT_CONFIG`` (not imported: it loads the config models).
DEFAULT_CONFIG = "hpctriton.yaml"

#: Config fields the probe's messages name -> the flags that set them (what messages
#: say with flags only: "no --metrics-url given").
FLAG_FIELDS = {"server.http_port": "--http-url", "server.grpc_port": "--grpc-url",
               "server.metrics_port": "--metrics-url"}


def split_url(url: str, flag: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, an optional ``http://``) -> (host, port)."""
    text = url.split("://", 1)[-1].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"{flag} expects HOST:PORT, got {url!r}", field=flag)
    if not 1 <= int(port) <= 65535:
        raise ConfigError(f"port {port} is not between 1 and 65535", field=flag)
    return host.strip("[]"), int(port)


def config_source(config_path: str | Path | None, *, http_url: str | None = None,
                  grpc_url: str | None = None) -> Path | None:
    """The config file ``check`` reads: ``config_path``, else ``./hpctriton.yaml`` when
    no URL is given and that file exists, else none (flags only)."""
    if config_path:
        return Path(config_path)
    if not (http_url or grpc_url) and Path(DEFAULT_CONFIG).is_file():
        return Path(DEFAULT_CONFIG)
    return None


def flag_names(config_path: str | Path | None, *, http_url: str | None = None,
               grpc_url: str | None = None) -> dict[str, str]:
    """Config fields -> the flags that set them, when ``check`` runs from flags only
    (empty with a config file, whose fields the user did write).

    Example::

        >>> flag_names(None, http_url="localhost:8000")["server.metrics_port"]
        '--metrics-url'
    """
    if config_source(config_path, http_url=http_url, grpc_url=grpc_url) is not None:
        return {}
    return dict(FLAG_FIELDS)


def _flag_error(exc: ConfigError, flags: Mapping[str, str]) -> ConfigError | None:
    """The error of a value a flag set, naming the flag (None for another field)."""
    field = getattr(exc, "field", None) or ""
    for name, flag in flags.items():
        if field == name or field.startswith(name + "."):
            return ConfigError(getattr(exc, "detail", str(exc)), field=flag)
    return None


def rename_fields(message: str, names: Mapping[str, str]) -> str:
    """``message`` with config fields replaced by the flags that set them: "no
    server.metrics_port configured" becomes "no --metrics-url given"."""
    for name, flag in names.items():
        if name in message:
            message = re.sub(rf"\bno {re.escape(name)} configured", f"no {flag} given",
                             message)
            message = message.replace(name, flag)
    return message


def config_for_check(
    config_path: str | Path | None = None,
    *,
    overrides: Sequence[str] = (),
    http_url: str | None = None,
    grpc_url: str | None = None,
    metrics_url: str | None = None,
    models: Sequence[str] = (),
    checks: Sequence[str] = (),
) -> Config:
    """A config from a file (if given, or ``./hpctriton.yaml`` when no URL is given),
    with the flags laid over it; the flags alone are enough.

    Example::

        >>> config_for_check(http_url="localhost:8000", models=["simple"]).server.http_port
        8000
    """
    from hpctriton.config import load_config, loading, yamlsrc
    from hpctriton.config import overrides as ov

    data: dict[str, Any] = {}
    base_dir: Path = Path(".")
    path = config_source(config_path, http_url=http_url, grpc_url=grpc_url)
    flags: dict[str, str] = {}  # config fields the flags set -> the flag
    src = yamlsrc.Sourced(data={}, source="")  # flags only: no file to name
    if path is not None:
        src = yamlsrc.load(path)
        if not isinstance(src.data, dict):
            load_config(path)  # raises the file's own clear error
        data = dict(src.data)
        base_dir = path.resolve().parent
    # errors in a value --set gave name that --set argument, the others the file
    data, src = loading.with_overrides(src, overrides)
    items: list[tuple[str, Any]] = []
    host, ports = _endpoints(http_url, grpc_url, metrics_url)
    for key, (flag, port) in ports.items():
        items += [("server.host", host), (f"server.{key}", port)]
        flags.setdefault("server.host", flag)
        flags[f"server.{key}"] = flag
    if models:
        items.append(("models", list(models)))
        flags["models"] = "--model"
    if checks:
        _check_names(checks)
        current = {(c if isinstance(c, str) else next(iter(c))): c
                   for c in data.get("checks") or []}
        items.append(("checks", [current.get(name, name) for name in checks]))
        flags["checks"] = "--checks"
    if path is None and "server" not in data and not any(k == "server.host" for k, _ in items):
        raise ConfigError(f"no config ({DEFAULT_CONFIG} not found): give -c FILE, or "
                          "--http-url/--grpc-url HOST:PORT and --model NAME")
    merged = ov.apply_all(data, items)
    if path is None and not merged.get("models"):
        raise ConfigError("no model to check: give --model NAME (repeatable)", field="--model")
    merged.setdefault("container", {"runtime": "none"})
    for key in flags:
        src = src.overridden(ov.split_key(key), flags[key])
    try:
        return loading.validate(merged, src, base_dir.resolve())
    except ConfigError as exc:
        renamed = _flag_error(exc, flags)
        if renamed is None:
            raise
        raise renamed from None


def _endpoints(http_url: str | None, grpc_url: str | None, metrics_url: str | None
               ) -> tuple[str | None, dict[str, tuple[str, int]]]:
    """The host and ``{"http_port": ("--http-url", 8000), …}`` of the URL flags."""
    hosts: set[str] = set()
    ports: dict[str, tuple[str, int]] = {}
    for url, flag, key in ((http_url, "--http-url", "http_port"),
                           (grpc_url, "--grpc-url", "grpc_port"),
                           (metrics_url, "--metrics-url", "metrics_port")):
        if url:
            host, port = split_url(url, flag)
            hosts.add(host)
            ports[key] = (flag, port)
    if len(hosts) > 1:
        raise UsageError("--http-url, --grpc-url and --metrics-url must name the same host "
                         f"(got {', '.join(sorted(hosts))})")
    return (next(iter(hosts)) if hosts else None), ports


def _port(ports: Mapping[str, tuple[str, int]], key: str) -> int | None:
    return ports[key][1] if key in ports else None


def _check_names(checks: Sequence[str]) -> None:
    unknown = [c for c in checks if c not in CHECK_OPTIONS]
    if unknown:
        raise ConfigError(f"unknown check(s) {', '.join(unknown)}; valid checks: "
                          f"{', '.join(CHECK_OPTIONS)}", field="--checks")


def _model_names(models: Sequence[str]) -> None:
    """The config's rule for model names (``Config.models``; a test keeps the two
    paths in step)."""
    for name in models:
        if not name or name.strip() != name or "/" in name:
            raise ConfigError(f"model name {name!r} is not a valid Triton model name",
                              field="--model")


def flags_task(*, http_url: str | None = None, grpc_url: str | None = None,
               metrics_url: str | None = None, models: Sequence[str] = (),
               checks: Sequence[str] = ()) -> TaskSpec:
    """The probe task of a check given by flags alone, built with the probe's own spec
    classes (which check it): the task :func:`config_for_check` and :func:`task_specs`
    make from the same flags, without the config models, the scheduler registry or
    pydantic (``tests/test_check_flags.py`` keeps the two equal). Errors name the flags.

    Example::

        >>> flags_task(grpc_url="localhost:8001", models=["simple"]).server.grpc_port
        8001
    """
    host, ports = _endpoints(http_url, grpc_url, metrics_url)
    if host is None:
        raise ConfigError("no config (hpctriton.yaml not found): give -c FILE, or "
                          "--http-url/--grpc-url HOST:PORT and --model NAME")
    if "http_port" not in ports and "grpc_port" not in ports:
        raise ConfigError("give --http-url or --grpc-url (or both): --metrics-url alone "
                          "reaches no check but metrics", field="--http-url")
    if not models:
        raise ConfigError("no model to check: give --model NAME (repeatable)", field="--model")
    _model_names(models)
    _check_names(checks)
    try:
        server = ServerSpec(host=host, http_port=_port(ports, "http_port"),
                            grpc_port=_port(ports, "grpc_port"),
                            metrics_port=_port(ports, "metrics_port"))
    except SpecError as exc:
        flag = next(iter(ports.values()))[0]
        raise ConfigError(str(exc), field=flag) from None
    return TaskSpec(task=0, server=server, models=list(models),
                    checks=[CheckSpec(name) for name in (checks or DEFAULT_CHECKS)])


def task_specs(config: Config) -> list[TaskSpec]:
    """One probe task per sweep point, its files read where the config names them (no
    bundle: :func:`hpctriton.render.bundle.task_specs` without a stager, here so that a
    check loads no template engine; a test keeps the two equal)."""
    return [TaskSpec(task=index, server=cfg.server, models=list(cfg.models),
                     checks=[CheckSpec(c.name, c.options) for c in cfg.checks],
                     probe=cfg.probe, point=dict(point))
            for index, (point, cfg) in enumerate(config.points())]


def check(
    config: Config,
    *,
    on_result: Callable[[ResultEntry], None] | None = None,
    environ: Mapping[str, str] | None = None,
    field_names: Mapping[str, str] | None = None,
) -> Results:
    """Run every task of the config (each sweep point) here, one after another.

    Files named by checks are read relative to the config's folder; ``${VAR}`` in
    headers comes from ``environ`` (default: this process's environment).
    ``field_names`` renames config fields in the messages (:func:`flag_names`: what a
    check from flags only says).

    Example::

        >>> results = check(config_for_check(grpc_url="localhost:8001", models=["simple"]))
        >>> [c.status for c in results.by_check("health")]
        ['pass', 'pass']
    """
    from hpctriton.report.notebook import Results
    from hpctriton.results.model import TaskResults

    documents = run_tasks(task_specs(config), base_dir=config.base_dir, on_result=on_result,
                          environ=environ, field_names=field_names)
    return Results([TaskResults(i, doc) for i, doc in enumerate(documents)], "check")


def run_tasks(
    tasks: Sequence[TaskSpec],
    *,
    base_dir: str | Path = ".",
    on_result: Callable[[ResultEntry], None] | None = None,
    environ: Mapping[str, str] | None = None,
    field_names: Mapping[str, str] | None = None,
) -> list[ResultsDocument]:
    """The probe's results document of each task, run here one after another (what
    :func:`check` does, without a config). ``field_names``: see :func:`check`.

    Example::

        >>> [d["summary"]["ok"] for d in run_tasks([flags_task(grpc_url="h:8001",
        ...                                                     models=["simple"])])]
        [True]
    """
    from hpctriton_probe.runner import run_task

    names = dict(field_names or {})

    def renamed(entry: ResultEntry) -> None:
        if names:
            entry["message"] = rename_fields(entry["message"], names)
        if on_result is not None:
            on_result(entry)

    documents = []
    for task in tasks:
        document = run_task(task, None, run_id="check", base_dir=str(base_dir),
                            on_result=renamed,
                            environ=dict(environ if environ is not None else os.environ))
        for entry in document.get("checks", []) if names else ():
            entry["message"] = rename_fields(entry["message"], names)
        documents.append(document)
    return documents


def verdict(document: ResultsDocument) -> tuple[bool, str]:
    """Whether one in-process probe run passed, and its verdict line: the probe's own
    verdict (:func:`hpctriton_probe.results.exit_code`), worded as
    :func:`hpctriton.report.summary.summary_line` words a run's (a test keeps the two
    equal), without loading the results model.

    Example::

        >>> verdict(run_tasks([flags_task(grpc_url="h:8001", models=["simple"])])[0])
        (True, 'OK: 8 passed, 0 failed, 0 errors, 3 skipped')
    """
    from hpctriton_probe.results import EXIT_INTERRUPTED, exit_code, summarize

    counts = summarize(document["checks"])
    code = exit_code(document)
    ok = code == 0 and counts["total"] > 0
    line = (f"{'OK' if ok else 'FAILED'}: {counts['pass']} passed, {counts['fail']} failed, "
            f"{counts['error']} errors, {counts['skip']} skipped")
    if code == EXIT_INTERRUPTED:
        line += "; interrupted tasks: [0]; tasks with problems: [0]"
    return ok, line

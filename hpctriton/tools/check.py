"""``hpctriton check``: run the probe here and now, in this process.

The same code that runs inside a job (``hpctriton_probe.runner.run_task``), fed with a
config built from a file, from flags, or both: ``--http-url host:port`` and a model are
enough to check a server without writing any YAML.

Example::

    >>> from hpctriton.tools.check import check, config_for_check
    >>> config = config_for_check(http_url="localhost:8000", models=["simple"])
    >>> check(config).ok
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctriton.config import DEFAULT_CONFIG, Config, config_from_data, load_config, yamlsrc
from hpctriton.config import overrides as ov
from hpctriton.errors import ConfigError, UsageError
from hpctriton.render.bundle import task_specs
from hpctriton.report.notebook import Results
from hpctriton.results.model import TaskResults
from hpctriton_probe.spec import CHECK_OPTIONS

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry


def split_url(url: str, flag: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``, an optional ``http://``) -> (host, port)."""
    text = url.split("://", 1)[-1].rstrip("/")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"{flag} expects HOST:PORT, got {url!r}", field=flag)
    return host.strip("[]"), int(port)


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
    data: dict[str, Any] = {}
    base_dir: Path = Path(".")
    path = Path(config_path) if config_path else None
    if path is None and not (http_url or grpc_url) and Path(DEFAULT_CONFIG).is_file():
        path = Path(DEFAULT_CONFIG)
    if path is not None:
        src = yamlsrc.load(path)
        if not isinstance(src.data, dict):
            load_config(path)  # raises the file's own clear error
        data = dict(src.data)
        base_dir = path.resolve().parent
    items = [ov.parse_set(item) for item in overrides]
    hosts = set()
    for url, flag, key in ((http_url, "--http-url", "http_port"),
                           (grpc_url, "--grpc-url", "grpc_port"),
                           (metrics_url, "--metrics-url", "metrics_port")):
        if url:
            host, port = split_url(url, flag)
            hosts.add(host)
            items += [("server.host", host), (f"server.{key}", port)]
    if len(hosts) > 1:
        raise UsageError("--http-url, --grpc-url and --metrics-url must name the same host "
                         f"(got {', '.join(sorted(hosts))})")
    if models:
        items.append(("models", list(models)))
    if checks:
        unknown = [c for c in checks if c not in CHECK_OPTIONS]
        if unknown:
            raise ConfigError(f"unknown check(s) {', '.join(unknown)}; valid checks: "
                              f"{', '.join(CHECK_OPTIONS)}", field="--checks")
        current = {(c if isinstance(c, str) else next(iter(c))): c
                   for c in data.get("checks") or []}
        items.append(("checks", [current.get(name, name) for name in checks]))
    if path is None and "server" not in data and not any(k == "server.host" for k, _ in items):
        raise ConfigError(f"no config ({DEFAULT_CONFIG} not found): give -c FILE, or "
                          "--http-url/--grpc-url HOST:PORT and --model NAME")
    merged = ov.apply_all(data, items)
    merged.setdefault("container", {"runtime": "none"})
    return config_from_data(merged, base_dir=base_dir)


def check(
    config: Config,
    *,
    on_result: Callable[[ResultEntry], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Results:
    """Run every task of the config (each sweep point) here, one after another.

    Files named by checks are read relative to the config's folder; ``${VAR}`` in
    headers comes from ``environ`` (default: this process's environment).

    Example::

        >>> results = check(config_for_check(grpc_url="localhost:8001", models=["simple"]))
        >>> [c.status for c in results.by_check("health")]
        ['pass', 'pass']
    """
    from hpctriton_probe.runner import run_task

    documents = []
    for task in task_specs(config):
        documents.append(run_task(task, None, run_id="check", base_dir=str(config.base_dir),
                                  on_result=on_result,
                                  environ=dict(environ if environ is not None else os.environ)))
    return Results([TaskResults(i, doc) for i, doc in enumerate(documents)], "check")

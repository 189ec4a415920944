"""The ``hpctriton`` command line: a thin layer over the Python API.

Conventions (the README's contract): ``-c/--config`` defaults to ``./hpctriton.yaml``;
``--json`` puts machine-readable output, and nothing else, on stdout; files are written
only through explicit options; exit codes 0 success, 1 checks or job failed, 2 usage or
config error, 3 remote or scheduler error. Only this module catches hpctriton's errors.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click

import hpctriton_probe

from . import backends
from .config import DEFAULT_CONFIG, Config, json_schema, load_config
from .errors import ConfigError, HpctritonError

F = TypeVar("F", bound=Callable[..., Any])


# ----------------------------------------------------------------- shared options


def config_option(f: F) -> F:
    return click.option(
        "-c", "--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
        type=click.Path(dir_okay=False), help="The config file.",
    )(f)


def set_option(f: F) -> F:
    return click.option(
        "--set", "overrides", multiple=True, metavar="KEY=VALUE",
        help="Override a config field by dotted key; the value is read as YAML. Repeatable.",
    )(f)


def json_option(f: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Machine-readable output on stdout.",
    )(f)


def cluster_options(f: F) -> F:
    f = click.option("--cluster", help="A cluster named under clusters: in the config.")(f)
    return click.option(
        "--backend", type=click.Choice(backends.names()),
        help="Override the cluster's backend (or pick one without clusters in the config).",
    )(f)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def load(config_path: str, overrides: tuple[str, ...] = ()) -> Config:
    return load_config(config_path, overrides=overrides)


def handle_errors(f: F) -> F:
    """Turn hpctriton's errors into a plain message and the documented exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except HpctritonError as exc:
            click.echo(f"hpctriton: error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------------ group


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(hpctriton_probe.__version__, prog_name="hpctriton")
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv: every command).")
def cli(verbose: int) -> None:
    """Check, load-test and monitor a Triton server from Slurm and DiCOS batch jobs.

    Exit codes: 0 success, 1 checks or job failed, 2 usage or config error,
    3 remote or scheduler error.
    """
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


@cli.command()
@click.argument("file", default=DEFAULT_CONFIG, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Replace an existing file.")
@json_option
@handle_errors
def init(file: str, force: bool, as_json: bool) -> None:
    """Write a commented starter config to FILE (default ./hpctriton.yaml; - for stdout)."""
    text = resources.files("hpctriton.templates").joinpath("starter.yaml").read_text("utf-8")
    if file == "-":
        click.echo(text, nl=False)
        return
    path = Path(file)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists (use --force to replace it)")
    path.write_text(text, encoding="utf-8")
    if as_json:
        emit_json({"written": str(path)})
    else:
        click.echo(f"wrote {path}: edit server, models and clusters, then `hpctriton render`")


@cli.command()
@json_option
def schema(as_json: bool) -> None:
    """Print the JSON Schema of the config file (always JSON)."""
    emit_json(json_schema())


@cli.command()
@config_option
@cluster_options
@set_option
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Folder for the bundle (created; must be empty unless --force).")
@click.option("--force", is_flag=True, help="Replace a non-empty output folder.")
@click.option("--run-id", help="Use this run id instead of a new one.")
@json_option
@handle_errors
def render(config_path: str, cluster: str | None, backend: str | None,
           overrides: tuple[str, ...], out_dir: str, force: bool, run_id: str | None,
           as_json: bool) -> None:
    """Render a job bundle you can submit by hand (sbatch job.sh / bash submit.sh)."""
    from .bundle import render_bundle

    config = load(config_path, overrides)
    bundle = render_bundle(config, out_dir, cluster=cluster, backend=backend, run_id=run_id,
                           force=force)
    files = sorted(p.relative_to(bundle.path).as_posix()
                   for p in bundle.path.rglob("*") if p.is_file())
    if as_json:
        emit_json({"path": str(bundle.path), "run_id": bundle.run_id, "backend": bundle.backend,
                   "cluster": bundle.cluster, "tasks": bundle.n_tasks, "files": files})
        return
    where = f"cluster {bundle.cluster}, " if bundle.cluster else ""
    click.echo(f"rendered run {bundle.run_id} ({bundle.backend}, {where}"
               f"{bundle.n_tasks} task{'s' if bundle.n_tasks != 1 else ''}) in {bundle.path}/")
    for name in files:
        click.echo(f"  {name}")
    how = backends.get_backend(bundle.backend).manual_command
    click.echo(f"run it by hand: cd {bundle.path} && {how}")


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="hpctriton")


if __name__ == "__main__":  # pragma: no cover
    main()

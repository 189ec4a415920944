"""The command group, the options the commands share, and how the CLI speaks.

Start-up matters (``hpctriton --help``, ``hpctriton check`` at a terminal): this module
imports click and the standard library only. Each command imports what it needs when
it runs, so pydantic, jinja2, rich, paramiko and tritonclient load only for the commands
that use them (``tests/test_cli_startup.py`` keeps it so).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

import hpctriton_probe
from hpctriton.errors import ConfigError, HpctritonError

if TYPE_CHECKING:
    from hpctriton.api import Run
    from hpctriton.config import Config
    from hpctriton.runs.index import IndexEntry

F = TypeVar("F", bound=Callable[..., Any])

#: ``hpctriton.config.DEFAULT_CONFIG``, here so that parsing the command line does not
#: import the config models (a test keeps the two equal).
DEFAULT_CONFIG = "hpctriton.yaml"


# ----------------------------------------------------------------- shared options


class BackendChoice(click.ParamType):
    """``--backend``: a registered scheduler name. The registry (entry points) is read
    when the option is used or its help is shown, not when the CLI starts."""

    name = "backend"

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        from hpctriton.schedulers import names

        return "[" + "|".join(names()) + "]"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        from hpctriton.schedulers import names

        known = names()
        if value not in known:
            self.fail(f"{value!r} is not one of {', '.join(map(repr, known))}.", param, ctx)
        return str(value)


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


def wide_option(f: F) -> F:
    return click.option(
        "--wide", is_flag=True,
        help="Every column (tables otherwise show their main columns, to fit 80).",
    )(f)


def cluster_options(f: F) -> F:
    f = click.option("--cluster", help="A cluster named under clusters: in the config.")(f)
    return click.option(
        "--backend", type=BackendChoice(),
        help="Override the cluster's backend (or pick one without clusters in the config).",
    )(f)


def runs_dir_option(f: F) -> F:
    f = click.option("--runs-dir", type=click.Path(file_okay=False),
                     help="Look only in this folder of run records (default: every run "
                          "you made, wherever its runs_dir is, and $HPCTRITON_RUNS_DIR "
                          "or ./hpctriton-runs).")(f)
    return click.option("-c", "--config", "config_path", default=None,
                        type=click.Path(dir_okay=False),
                        help="Look only in this config's runs_dir.")(f)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def load(config_path: str, overrides: Sequence[str] = ()) -> Config:
    from hpctriton.config import load_config

    return load_config(config_path, overrides=overrides)


def _probe_error(exc: BaseException) -> bool:
    """An error of the in-process probe (a bad spec, tritonclient missing). Their
    modules are looked up, not imported: if one is not loaded, nothing raised it."""
    kinds = [getattr(sys.modules.get(module), name, None) for module, name in (
        ("hpctriton_probe.spec", "SpecError"),
        ("hpctriton_probe.net.clients", "ProbeDependencyError"))]
    return any(isinstance(k, type) and isinstance(exc, k) for k in kinds)


def handle_errors(f: F) -> F:
    """Turn hpctriton's errors into a plain message and the documented exit code."""

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except HpctritonError as exc:
            click.echo(f"hpctriton: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # a local file or folder: name it, no traceback
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            click.echo(f"hpctriton: error: {exc.strerror or exc}{where}", err=True)
            sys.exit(2)
        except Exception as exc:
            if not _probe_error(exc):  # from the in-process probe
                raise
            click.echo(f"hpctriton: error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def console(err: bool = False) -> Any:
    """A rich console for tables (imported here: only commands that print tables pay
    for rich)."""
    from rich.console import Console

    return Console(stderr=err)


# ---------------------------------------------------------- telling what to run next


def _shown_path(path: str) -> str:
    """``path`` as a user types it here: relative to the current folder when inside it
    (with a ``/``, so the shell does not search PATH), else absolute."""
    absolute = os.path.abspath(path)
    try:
        here = os.getcwd()
    except OSError:
        return absolute
    if absolute.startswith(here.rstrip("/") + "/"):
        relative = absolute[len(here.rstrip("/")) + 1:]
        return relative if "/" in relative else f"./{relative}"
    return absolute


def command_prefix() -> list[str]:
    """How to run this hpctriton again from the user's shell: ``hpctriton`` when that
    is on PATH and is this program; else the path it was started by (``.venv/bin/
    hpctriton`` when the venv is not active), or ``python -m hpctriton``.

    Example::

        >>> command_prefix()      # ./scripts/demo, the venv not active
        ['.venv/bin/hpctriton']
    """
    argv0 = sys.argv[0] if sys.argv else ""
    name = os.path.basename(argv0)
    if name == "__main__.py" and os.path.basename(os.path.dirname(argv0)) == "hpctriton":
        return [_shown_path(sys.executable), "-m", "hpctriton"]
    if not name.startswith("hpctriton") or not os.path.isfile(argv0):
        return ["hpctriton"]
    found = shutil.which("hpctriton")
    try:
        if found and os.path.samefile(found, argv0):
            return ["hpctriton"]
    except OSError:
        pass
    return [_shown_path(argv0)]


def shell_command(*args: str) -> str:
    """A command line for the user to run, quoted: ``.venv/bin/hpctriton report RUN``."""
    from hpctriton.shell.quoting import join

    return join([*command_prefix(), *args])


def activation_hint() -> str | None:
    """How to put hpctriton on PATH, when it is not there (a venv not active)."""
    prefix = command_prefix()
    if prefix == ["hpctriton"]:
        return None
    program = prefix[0]
    activate = os.path.join(os.path.dirname(os.path.abspath(program)), "activate")
    if not os.path.isfile(activate):
        return None
    return (f"(hpctriton is not on your PATH: run `. {_shown_path(activate)}` first to "
            "type just `hpctriton`)")


def echo_next(commands: Sequence[tuple[Sequence[str], str]], err: bool = False) -> None:
    """``next:`` and the exact commands to run, each with what it does."""
    lines = [(shell_command(*args), what) for args, what in commands]
    width = max(len(text) for text, _ in lines)
    click.echo("next:", err=err)
    for text, what in lines:
        click.echo(f"  {text:<{width}}  # {what}" if what else f"  {text}", err=err)
    hint = activation_hint()
    if hint:
        click.echo(f"  {hint}", err=err)


# ------------------------------------------------------------------- finding runs


def cli_runs_root(runs_dir: str | None, config_path: str | None) -> Path:
    """The one folder ``--runs-dir`` or ``-c`` names (a config's runs_dir is read on its
    own, so a config that needs --set to be complete still works)."""
    from hpctriton.runs.record import runs_dir_of, runs_root

    if runs_dir is None and config_path is not None:
        return runs_dir_of(config_path)
    return runs_root(runs_dir)


def default_runs_root() -> Path | None:
    """Where runs are looked for besides the index: ``./hpctriton.yaml``'s runs_dir when
    that file is here, else ``$HPCTRITON_RUNS_DIR`` or ``./hpctriton-runs``. A broken
    ``./hpctriton.yaml`` is passed over (the index may still answer)."""
    from hpctriton.runs.record import runs_dir_of, runs_root

    if Path(DEFAULT_CONFIG).is_file():
        try:
            return runs_dir_of(DEFAULT_CONFIG)
        except ConfigError as exc:
            logging.getLogger("hpctriton").debug("not reading runs_dir: %s", exc)
            return None
    return runs_root()


def note_dropped(dropped: Sequence[IndexEntry]) -> None:
    """Say which runs left the index because their folders are gone."""
    for entry in dropped:
        click.echo(f"hpctriton: note: run {entry.run_id} was dropped from your run index: "
                   f"its folder {entry.path} is gone", err=True)


def open_cli_run(run_ref: str | None, runs_dir: str | None, config_path: str | None) -> Run:
    """The run a command is about: in the one folder ``--runs-dir``/``-c`` names, else
    among every run this user made (the index) and the default runs_dir."""
    from hpctriton.api import Run

    if runs_dir is not None or config_path is not None:
        from hpctriton.runs.record import find_run

        return Run(find_run(cli_runs_root(runs_dir, config_path), run_ref))
    from hpctriton.runs.index import find_any_run

    found = find_any_run(run_ref, also=default_runs_root())
    note_dropped(found.dropped)
    return Run(found.record)


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
    if verbose < 2:
        # paramiko logs its transport thread's failures with a traceback ("Error reading
        # SSH protocol banner"); hpctriton reports each failure in one line of its own
        logging.getLogger("paramiko").setLevel(logging.CRITICAL + 1)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="hpctriton")

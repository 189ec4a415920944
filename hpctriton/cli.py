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
from hpctriton.config import DEFAULT_CONFIG, Config, json_schema, load_config
from hpctriton.errors import ConfigError, HpctritonError
from hpctriton.schedulers import get_scheduler, names

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
        "--backend", type=click.Choice(names()),
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
        from hpctriton_probe.net.clients import ProbeDependencyError
        from hpctriton_probe.spec import SpecError

        try:
            return f(*args, **kwargs)
        except HpctritonError as exc:
            click.echo(f"hpctriton: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (SpecError, ProbeDependencyError) as exc:  # from the in-process probe
            click.echo(f"hpctriton: error: {exc}", err=True)
            sys.exit(2)
        except OSError as exc:  # a local file or folder: name it, no traceback
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            click.echo(f"hpctriton: error: {exc.strerror or exc}{where}", err=True)
            sys.exit(2)

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
    text = resources.files("hpctriton.config").joinpath("starter.yaml").read_text("utf-8")
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
    from hpctriton.render.bundle import render_bundle

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
    how = get_scheduler(bundle.backend).manual_command
    click.echo(f"run it by hand: cd {bundle.path} && {how}")


@cli.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="A config file (default ./hpctriton.yaml when no URL is given).")
@set_option
@click.option("--http-url", metavar="HOST:PORT", help="Triton's HTTP endpoint.")
@click.option("--grpc-url", metavar="HOST:PORT", help="Triton's gRPC endpoint.")
@click.option("--metrics-url", metavar="HOST:PORT", help="Triton's metrics endpoint.")
@click.option("--model", "models", multiple=True, metavar="NAME", help="A model (repeatable).")
@click.option("--checks", "checks_csv", metavar="NAMES",
              help="Comma-separated checks (default: the config's, else all but load).")
@click.option("--results", "results_path", type=click.Path(dir_okay=False),
              help="Write results.json here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False),
              help="Write JUnit XML here.")
@json_option
@handle_errors
def check(config_path: str | None, overrides: tuple[str, ...], http_url: str | None,
          grpc_url: str | None, metrics_url: str | None, models: tuple[str, ...],
          checks_csv: str | None, results_path: str | None, junit_path: str | None,
          as_json: bool) -> None:
    """Run the probe here and now against a Triton server (no job, no cluster).

    Exit 0 when every check passed (skips allowed), 1 when one failed or errored.
    """
    from hpctriton.report.terminal import summary_line
    from hpctriton.runs.record import atomic_write
    from hpctriton.tools.check import check as run_check
    from hpctriton.tools.check import config_for_check
    from hpctriton_probe.cli import format_line
    from hpctriton_probe.junit import results_to_junit

    checks = [c.strip() for c in (checks_csv or "").split(",") if c.strip()]
    config = config_for_check(config_path, overrides=overrides, http_url=http_url,
                              grpc_url=grpc_url, metrics_url=metrics_url, models=models,
                              checks=checks)
    printer = None if as_json else (lambda entry: click.echo(format_line(entry)))
    results = run_check(config, on_result=printer)
    documents = [t.data for t in results.tasks]
    document: Any = documents[0] if len(documents) == 1 else documents
    if results_path:
        atomic_write(Path(results_path), json.dumps(document, indent=1) + "\n")
    if junit_path:
        atomic_write(Path(junit_path), results_to_junit(document))
    if as_json:
        emit_json(document)
    else:
        click.echo(summary_line(results))
    sys.exit(0 if results.ok else 1)


@cli.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Run this config instead of examples/local.yaml (its server ports are "
                   "replaced by the demo server's).")
@click.option("--runs-dir", default="hpctriton-runs", show_default=True,
              type=click.Path(file_okay=False), help="Where the demo's run record goes.")
@click.option("--http-port", type=int, help="Fixed ports for the demo server (default: free).")
@click.option("--grpc-port", type=int)
@click.option("--metrics-port", type=int)
@click.option("--ready-timeout", "ready_timeout_s", type=float, default=120.0,
              show_default=True, help="Seconds to wait for the demo server.")
@json_option
@handle_errors
def demo(config_path: str | None, runs_dir: str, http_port: int | None,
         grpc_port: int | None, metrics_port: int | None, ready_timeout_s: float,
         as_json: bool) -> None:
    """Start the bundled demo Triton server, run the local-backend job, show the report.

    The whole main job on this machine: render -> submit (local backend) -> the probe
    checks a real Triton -> collect -> report. The server stops when the demo ends.
    """
    from hpctriton.api import submit as api_submit
    from hpctriton.report.terminal import print_results
    from hpctriton.tools.demo import demo_config, demo_server

    def say(text: str) -> None:
        if not as_json:
            click.echo(text, err=True)

    say("starting the demo Triton server (nvidia-pytriton's tritonserver, on the CPU)...")
    with demo_server(http_port, grpc_port, metrics_port, ready_timeout_s) as server:
        say(f"Triton is ready: HTTP 127.0.0.1:{server.http_port}, gRPC 127.0.0.1:"
            f"{server.grpc_port}, metrics 127.0.0.1:{server.metrics_port}")
        source = config_path or "examples/local.yaml"
        say(f"hpctriton submit -c {source} --backend local --wait "
            + " ".join(f"--set {o}" for o in server.overrides()))
        config = demo_config(server, runs_dir, config_path)
        run = api_submit(config, backend="local", wait=True, progress=not as_json)
        with run:
            status = run.status()
            results = run.results()
            if as_json:
                emit_json({**status_json(run, status), "results": results.to_json(),
                           "run_dir": str(run.path)})
            else:
                print_status(run, status)
                print_results(results)
                say(f"run folder: {run.path}  (bundle/, results/, run.json, config.yaml)")
                say(f"next: hpctriton report {run.run_id} --runs-dir {runs_dir} "
                    "--html report.html")
    sys.exit(0 if results.ok and outcome_code(status) == 0 else 1)


@cli.group()
def image() -> None:
    """The tritonclient image: write its definition, or build it on a cluster.

    Most sites already have one (the probe needs Python 3.8+ and tritonclient 2.30+):
    then set container.image to it and build nothing.
    """


@image.command("def")
@click.option("-o", "--output", "out_path", type=click.Path(dir_okay=False),
              help="Write the definition here (default: stdout).")
@click.option("--force", is_flag=True, help="Replace an existing file.")
@handle_errors
def image_def(out_path: str | None, force: bool) -> None:
    """Print (or write) the Singularity definition file of the tritonclient image."""
    from hpctriton.tools.image import definition_text

    text = definition_text()
    if out_path is None:
        click.echo(text, nl=False)
        return
    path = Path(out_path)
    if path.exists() and not force:
        raise ConfigError(f"{path} exists (use --force to replace it)")
    path.write_text(text, encoding="utf-8")
    click.echo(f"wrote {path}: build it with `singularity build tritonclient.sif {path}` "
               "or `hpctriton image build --cluster NAME`", err=True)


@image.command("build")
@config_option
@click.option("--cluster", help="Build on this cluster's login node (or here, without host).")
@click.option("--runtime", type=click.Choice(["singularity", "apptainer"]),
              help="Default: the config's container runtime.")
@click.option("--fakeroot", is_flag=True, help="Pass --fakeroot (unprivileged builds).")
@click.option("-o", "--output", "output", help="The image path (on the build host).")
@click.option("--force", is_flag=True, help="Overwrite an existing image.")
@click.option("--dry-run", is_flag=True, help="Show the build command; run nothing.")
@set_option
@json_option
@handle_errors
def image_build(config_path: str, cluster: str | None, runtime: str | None, fakeroot: bool,
                output: str | None, force: bool, dry_run: bool, overrides: tuple[str, ...],
                as_json: bool) -> None:
    """Build the image with singularity/apptainer build and print the config line to use it."""
    from hpctriton.tools.image import build_image

    config = load(config_path, overrides)
    def show(plan: Any) -> None:
        if not as_json:
            click.echo(f"building on {plan.where}: {' '.join(plan.argv)}", err=True)

    result = build_image(config, cluster, runtime=runtime, fakeroot=fakeroot, output=output,
                         force=force, on_plan=None if dry_run else show, dry_run=dry_run)
    if dry_run:
        if as_json:
            emit_json({"dry_run": True, "where": result.plan.where, "host": result.host,
                       "argv": result.plan.argv, "image": result.plan.image,
                       "config_line": result.config_line})
        else:
            click.echo(f"would run on {result.host}: {' '.join(result.plan.argv)}")
            click.echo(f"then use: {result.config_line}")
        return
    if as_json:
        emit_json({"image": result.plan.image, "host": result.host,
                   "duration_s": round(result.duration_s, 1),
                   "config_line": result.config_line})
    else:
        click.echo(f"built {result.plan.image} on {result.host} in {result.duration_s:.0f} s")
        click.echo(f"use it with: {result.config_line}")


def runs_dir_option(f: F) -> F:
    f = click.option("--runs-dir", type=click.Path(file_okay=False),
                     help="Folder of run records (default: the config's runs_dir, else "
                          "$HPCTRITON_RUNS_DIR, else ./hpctriton-runs).")(f)
    return click.option("-c", "--config", "config_path", default=None,
                        type=click.Path(dir_okay=False),
                        help="Read runs_dir from this config (default ./hpctriton.yaml if "
                             "present).")(f)


def cli_runs_root(runs_dir: str | None, config_path: str | None) -> Path:
    """Where run records are: --runs-dir, else the config's runs_dir (read on its own,
    so a config that needs --set to be complete still works), else the default."""
    from hpctriton.runs.record import runs_dir_of, runs_root

    if runs_dir is None:
        path = Path(config_path or DEFAULT_CONFIG)
        if config_path or path.is_file():
            return runs_dir_of(path)
    return runs_root(runs_dir)


def open_cli_run(run_ref: str | None, runs_dir: str | None, config_path: str | None) -> Any:
    from hpctriton.api import Run
    from hpctriton.runs.record import find_run

    return Run(find_run(cli_runs_root(runs_dir, config_path), run_ref))


def print_status(run: Any, status: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"run {run.run_id} ({run.record.backend} on {run.record.host})")
    for column in ("task", "state", "job id", "host", "exit", "reason"):
        table.add_column(column)
    colours = {"succeeded": "green", "failed": "red", "timeout": "red", "cancelled": "yellow",
               "running": "cyan", "pending": "blue", "unknown": "magenta"}
    for task, st in sorted(status.tasks.items()):
        colour = colours.get(st.state.value, "white")
        table.add_row(str(task), f"[{colour}]{st.state.value}[/{colour}]", st.job_id, st.host,
                      "" if st.exit_code is None else str(st.exit_code), st.reason)
    Console().print(table)
    counts = ", ".join(f"{n} {k}" for k, n in sorted(status.counts().items()))
    click.echo(f"{run.run_id}: {status.overall.value} ({counts})")


def status_json(run: Any, status: Any) -> dict[str, Any]:
    return {"run_id": run.run_id, "backend": run.record.backend, "host": run.record.host,
            "overall": status.overall.value, "done": status.done, "counts": status.counts(),
            "tasks": [s.to_json() for _, s in sorted(status.tasks.items())]}


def outcome_code(status: Any) -> int:
    """0 when every task succeeded (or is still going), 1 when any ended badly."""
    bad = {"failed", "timeout", "cancelled"}
    return 1 if any(s.state.value in bad for s in status.tasks.values()) else 0


@cli.command()
@config_option
@cluster_options
@set_option
@click.option("--wait", "wait_", is_flag=True, help="Wait for the jobs, then collect.")
@click.option("--timeout", "timeout_s", type=float, help="With --wait: give up after this many "
              "seconds (the jobs keep running).")
@click.option("--dry-run", is_flag=True, help="Show what would be submitted; write nothing.")
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Override runs_dir.")
@json_option
@handle_errors
def submit(config_path: str, cluster: str | None, backend: str | None,
           overrides: tuple[str, ...], wait_: bool, timeout_s: float | None, dry_run: bool,
           runs_dir: str | None, as_json: bool) -> None:
    """Render, stage over SSH, submit and record a run (see `hpctriton runs`)."""
    from hpctriton.api import plan as api_plan
    from hpctriton.api import submit as api_submit

    config = load(config_path, overrides)
    if dry_run:
        plan = api_plan(config, cluster, backend=backend, runs_dir=runs_dir)
        if as_json:
            emit_json({"dry_run": True, **plan.to_json()})
        else:
            click.echo(f"dry run: would submit run {plan.run_id} ({plan.backend}, "
                       f"{plan.n_tasks} task{'s' if plan.n_tasks != 1 else ''}) to "
                       f"{plan.host}:{plan.remote_dir}; record in {plan.run_dir}")
        return
    run = api_submit(config, cluster, backend=backend, runs_dir=runs_dir)
    with run:
        jobs = ", ".join(j.job_id for j in run.record.jobs)
        if not as_json:
            click.echo(f"submitted run {run.run_id}: {run.n_tasks} task"
                       f"{'s' if run.n_tasks != 1 else ''} as {run.record.backend} job(s) "
                       f"{jobs} on {run.record.host}")
        if not wait_:
            if as_json:
                emit_json({"run_id": run.run_id, "path": str(run.path),
                           "remote_dir": run.record.remote_dir,
                           "jobs": [j.job_id for j in run.record.jobs]})
            else:
                click.echo(f"follow it with: hpctriton wait {run.run_id}")
            return
        status = run.wait(timeout_s=timeout_s, progress=not as_json)
        report = run.collect()
        results = run.results()
        if as_json:
            emit_json({**status_json(run, status), "collected": report.to_json(),
                       "results": results.to_json()})
        else:
            print_status(run, status)
            click.echo(f"collected {len(report.fetched)} task(s) into {report.target}")
            from hpctriton.report.terminal import print_results

            print_results(results)
        sys.exit(max(outcome_code(status), 0 if results.ok else 1))


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("--no-scheduler", is_flag=True, help="Read state files only.")
@json_option
@handle_errors
def status(run_ref: str | None, runs_dir: str | None, config_path: str | None,
           no_scheduler: bool, as_json: bool) -> None:
    """Show each task's state (RUN defaults to the newest run). Exit 1 if any ended badly."""
    with open_cli_run(run_ref, runs_dir, config_path) as run:
        st = run.status(scheduler=not no_scheduler)
        if as_json:
            emit_json(status_json(run, st))
        else:
            print_status(run, st)
        sys.exit(outcome_code(st))


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("--timeout", "timeout_s", type=float, help="Give up after this many seconds.")
@click.option("--collect/--no-collect", "do_collect", default=True, show_default=True,
              help="Collect the results when the run has ended.")
@json_option
@handle_errors
def wait(run_ref: str | None, runs_dir: str | None, config_path: str | None,
         timeout_s: float | None, do_collect: bool, as_json: bool) -> None:
    """Wait for a run's tasks to end (state files, scheduler hints at most every 30 s)."""
    with open_cli_run(run_ref, runs_dir, config_path) as run:
        st = run.wait(timeout_s=timeout_s, progress=not as_json)
        collected = run.collect().to_json() if do_collect and st.done else None
        if as_json:
            emit_json({**status_json(run, st), "collected": collected})
        else:
            print_status(run, st)
            if collected:
                click.echo(f"collected into {collected['target']}")
        sys.exit(outcome_code(st) if st.done else 1)


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("--task", "tasks", type=int, multiple=True, help="Only this task (repeatable).")
@json_option
@handle_errors
def cancel(run_ref: str | None, runs_dir: str | None, config_path: str | None,
           tasks: tuple[int, ...], as_json: bool) -> None:
    """Cancel a run (or some of its tasks)."""
    with open_cli_run(run_ref, runs_dir, config_path) as run:
        run.cancel(list(tasks) or None)
        if as_json:
            emit_json({"run_id": run.run_id, "cancelled": list(tasks) or "all"})
        else:
            click.echo(f"cancel requested for run {run.run_id}"
                       + (f" tasks {', '.join(map(str, tasks))}" if tasks else ""))


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("--task", "tasks", type=int, multiple=True,
              help="Only this task (repeatable); default: every failed, cancelled or "
                   "timed-out task.")
@json_option
@handle_errors
def resubmit(run_ref: str | None, runs_dir: str | None, config_path: str | None,
             tasks: tuple[int, ...], as_json: bool) -> None:
    """Submit tasks of a run again (recorded in the run; earlier results kept aside)."""
    with open_cli_run(run_ref, runs_dir, config_path) as run:
        refs = run.resubmit(list(tasks) or None)
        if as_json:
            emit_json({"run_id": run.run_id, "jobs": [{"job_id": r.job_id, "tasks": r.tasks}
                                                      for r in refs]})
        elif not refs:
            click.echo(f"run {run.run_id}: nothing to resubmit")
        else:
            click.echo(f"run {run.run_id}: resubmitted "
                       + ", ".join(f"task(s) {r.tasks} as {r.job_id}" for r in refs))


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Collect into this folder instead of the run's results/.")
@json_option
@handle_errors
def collect(run_ref: str | None, runs_dir: str | None, config_path: str | None,
            out_dir: str | None, as_json: bool) -> None:
    """Fetch results of ended tasks through one tar stream, verified (RUN: newest)."""
    with open_cli_run(run_ref, runs_dir, config_path) as run:
        report = run.collect(out_dir)
        if as_json:
            emit_json({"run_id": run.run_id, **report.to_json()})
            return
        click.echo(f"run {run.run_id}: fetched {len(report.fetched)} task(s), "
                   f"{len(report.already)} already here, into {report.target}")
        if report.unverified:
            click.echo(f"  without a manifest (killed before finishing?): {report.unverified}")
        if report.missing:
            click.echo(f"  nothing to fetch yet for tasks: {report.missing}")


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write one self-contained HTML report with plots here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False),
              help="Write JUnit XML here (for CI systems).")
@json_option
@handle_errors
def report(run_ref: str | None, runs_dir: str | None, config_path: str | None,
           html_path: str | None, junit_path: str | None, as_json: bool) -> None:
    """Show a collected run's results (RUN: newest); exit 1 unless every check passed."""
    from hpctriton.report import write_html_report, write_junit
    from hpctriton.report.terminal import print_results

    with open_cli_run(run_ref, runs_dir, config_path) as run:
        results = run.results()
        if html_path:
            write_html_report(run, html_path)
        if junit_path:
            write_junit(run, junit_path)
        if as_json:
            emit_json(results.to_json())
        else:
            if not results.tasks:
                click.echo(f"run {run.run_id}: no results collected yet "
                           f"(hpctriton collect {run.run_id})", err=True)
            print_results(results)
            for path, what in ((html_path, "HTML report"), (junit_path, "JUnit XML")):
                if path:
                    click.echo(f"wrote {what} {path}", err=True)
        sys.exit(0 if results.ok else 1)


@cli.command()
@click.argument("run_refs", metavar="RUN_A RUN_B [RUN...]", nargs=-1, required=True)
@runs_dir_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write the comparison as one HTML file with plots.")
@json_option
@handle_errors
def compare(run_refs: tuple[str, ...], runs_dir: str | None, config_path: str | None,
            html_path: str | None, as_json: bool) -> None:
    """Compare runs side by side: the first is the baseline, differences are B - A."""
    from hpctriton.errors import UsageError
    from hpctriton.report import compare_runs, comparison_json, write_comparison_html
    from hpctriton.report.terminal import print_comparison

    if len(run_refs) < 2:
        raise UsageError("compare needs at least two runs")
    runs = [open_cli_run(ref, runs_dir, config_path) for ref in run_refs]
    comparison = compare_runs(runs)
    if html_path:
        write_comparison_html(comparison, html_path)
    if as_json:
        emit_json(comparison_json(comparison))
    else:
        print_comparison(comparison)
        if html_path:
            click.echo(f"wrote {html_path}", err=True)


@cli.command()
@runs_dir_option
@click.option("-n", "--limit", type=int, default=20, show_default=True)
@json_option
@handle_errors
def runs(runs_dir: str | None, config_path: str | None, limit: int, as_json: bool) -> None:
    """List recorded runs, newest first."""
    from hpctriton.runs.record import list_runs

    root = cli_runs_root(runs_dir, config_path)
    records = list_runs(root)[:limit]
    if as_json:
        emit_json([{"run_id": r.run_id, "backend": r.backend, "cluster": r.cluster,
                    "host": r.host, "tasks": r.n_tasks, "created_at": r.created_at,
                    "submitted_at": r.submitted_at, "path": str(r.path),
                    "jobs": [j.job_id for j in r.jobs]} for r in records])
        return
    if not records:
        click.echo(f"no runs in {root}")
        return
    for r in records:
        jobs = ",".join(j.job_id for j in r.jobs) or "-"
        click.echo(f"{r.run_id}  {r.backend:<6} {r.n_tasks:>4} task(s)  jobs {jobs}  "
                   f"{r.host}  {r.created_at}")


@cli.command()
@config_option
@click.option("--cluster", help="A cluster named under clusters: in the config.")
@set_option
@json_option
@handle_errors
def doctor(config_path: str, cluster: str | None, overrides: tuple[str, ...],
           as_json: bool) -> None:
    """Check the cluster side: SSH and host key, scheduler, workdir, image, server."""
    from hpctriton.tools.doctor import run_doctor

    checks = run_doctor(load(config_path, overrides), cluster)
    failed = [c for c in checks if not c.ok and not c.optional]
    if as_json:
        emit_json({"ok": not failed, "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail,
                                                 "optional": c.optional} for c in checks]})
    else:
        for c in checks:
            mark = "ok  " if c.ok else ("warn" if c.optional else "FAIL")
            click.echo(f"[{mark}] {c.name}: {c.detail}")
    sys.exit(3 if failed else 0)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="hpctriton")


if __name__ == "__main__":  # pragma: no cover
    main()

"""Preparing: ``init``, ``schema``, ``render``, ``image def|build``, ``doctor``."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Any

import click

from hpctriton.cli.app import (
    DEFAULT_CONFIG,
    cli,
    cluster_options,
    config_option,
    emit_json,
    handle_errors,
    json_option,
    load,
    set_option,
)
from hpctriton.errors import ConfigError


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
    from hpctriton.config import json_schema

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
    from hpctriton.schedulers import get_scheduler

    how = get_scheduler(bundle.backend).manual_command
    click.echo(f"run it by hand: cd {bundle.path} && {how}")


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

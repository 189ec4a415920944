"""On this machine, now: ``check`` (the probe in this process) and ``demo`` (the bundled
demo Triton server, with the local-backend job or on its own with ``--serve``)."""

from __future__ import annotations

import json
import signal
import sys
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from hpctriton.cli.app import (
    cli,
    echo_next,
    emit_json,
    handle_errors,
    json_option,
    set_option,
    shell_command,
    wide_option,
)

if TYPE_CHECKING:
    from hpctriton_probe.schema import ResultEntry


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
@wide_option
@json_option
@handle_errors
def check(config_path: str | None, overrides: tuple[str, ...], http_url: str | None,
          grpc_url: str | None, metrics_url: str | None, models: tuple[str, ...],
          checks_csv: str | None, results_path: str | None, junit_path: str | None,
          wide: bool, as_json: bool) -> None:
    """Run the probe here and now against a Triton server (no job, no cluster).

    Exit 0 when every check passed (skips allowed), 1 when one failed or errored.
    A capacity search's sentence is printed just before the verdict line. At a terminal
    (or with COLUMNS set) no line is wider than it: a narrow one leaves out protocol
    and time (--wide keeps them) and wraps messages, as `report` does.
    """
    # flags only: the probe alone (no config models, no pydantic); with a config file or
    # --set: the config models too. Never a table library or the template engine.
    from hpctriton.report.check_lines import ResultLines, terminal_width, wrap
    from hpctriton.tools import check as here
    from hpctriton_probe.cli import format_line

    checks = [c.strip() for c in (checks_csv or "").split(",") if c.strip()]
    width = terminal_width()

    fitted: ResultLines | None = None  # at a known width: lines that fit it

    def printer_for(model_names: Sequence[str], check_names: Sequence[str]
                    ) -> Callable[[ResultEntry], None] | None:
        nonlocal fitted
        if as_json:
            return None
        if width is None:  # a pipe or a file: the probe's lines, whole
            return lambda entry: click.echo(format_line(entry))
        lines = fitted = ResultLines(width, checks=check_names, models=model_names,
                                     wide=wide)
        return lambda entry: click.echo("\n".join(lines.lines(entry)))

    names = here.flag_names(config_path, http_url=http_url, grpc_url=grpc_url)
    if here.config_source(config_path, http_url=http_url, grpc_url=grpc_url) is None \
            and not overrides:
        task = here.flags_task(http_url=http_url, grpc_url=grpc_url, metrics_url=metrics_url,
                               models=models, checks=checks)
        printer = printer_for(task.models, [c.name for c in task.checks])
        documents = here.run_tasks([task], on_result=printer, field_names=names)
        ok, line = here.verdict(documents[0])
        # the sentence of each capacity search, as the probe worded it (``load.search``)
        lead = [str(e["details"]["sentence"]) for e in documents[0]["checks"]
                if isinstance(e.get("details"), dict) and e["details"].get("sentence")
                and "capacity" in e["details"]]
    else:
        from hpctriton.report.summary import capacity_lines, summary_line

        config = here.config_for_check(config_path, overrides=overrides, http_url=http_url,
                                       grpc_url=grpc_url, metrics_url=metrics_url,
                                       models=models, checks=checks)
        printer = printer_for(list(config.models), [c.name for c in config.checks])
        results = here.check(config, on_result=printer, field_names=names)
        documents = [t.data for t in results.tasks]
        ok, line = results.ok, summary_line(results)
        lead = capacity_lines(results)
    document: Any = documents[0] if len(documents) == 1 else documents
    if results_path or junit_path:
        from hpctriton_probe.results import atomic_write  # as the probe writes its own

        if results_path:
            atomic_write(results_path, json.dumps(document, indent=1) + "\n")
        if junit_path:
            from hpctriton_probe.junit import results_to_junit

            atomic_write(junit_path, results_to_junit(document))
    if as_json:
        emit_json(document)
    else:
        note = fitted.note() if fitted is not None else None  # protocol and time left out
        for text in [*([note] if note else []), *lead, line]:  # capacity, then the verdict
            click.echo("\n".join(wrap(text, width, indent="  ")))
    sys.exit(0 if ok else 1)


def _serve(server: Any, as_json: bool) -> None:
    """Keep the demo server in the foreground until Ctrl-C (or SIGTERM, or the server
    ends by itself: exit 3 with its log)."""
    flags = (f"--http-url 127.0.0.1:{server.http_port} --grpc-url 127.0.0.1:"
             f"{server.grpc_port} --metrics-url 127.0.0.1:{server.metrics_port}")
    if as_json:
        emit_json({"http_url": f"127.0.0.1:{server.http_port}",
                   "grpc_url": f"127.0.0.1:{server.grpc_port}",
                   "metrics_url": f"127.0.0.1:{server.metrics_port}",
                   "models": server.models, "pid": server.pid})
    else:
        click.echo(flags)
    sys.stdout.flush()
    if not as_json:
        click.echo(f"the demo Triton server is ready (models: {', '.join(server.models)}); "
                   "Ctrl-C stops it. Point hpctriton at it, e.g.:", err=True)
        click.echo("  " + shell_command("check", *flags.split(), "--model", "simple"), err=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while server.alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        if not as_json:
            click.echo("stopping the demo Triton server", err=True)
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
    from hpctriton.tools.demo import DemoError

    raise DemoError(f"the demo Triton server ended by itself:\n{server.log_tail()}")


@cli.command()
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False),
              help="Run this config instead of examples/local.yaml (its server ports are "
                   "replaced by the demo server's).")
@click.option("--serve", is_flag=True,
              help="Only start the demo server and keep it in the foreground until "
                   "Ctrl-C; print the flags that reach it (for `hpctriton check`).")
@click.option("--runs-dir", default="hpctriton-runs", show_default=True,
              type=click.Path(file_okay=False), help="Where the demo's run record goes.")
@click.option("--http-port", type=int, help="Fixed ports for the demo server (default: free).")
@click.option("--grpc-port", type=int)
@click.option("--metrics-port", type=int)
@click.option("--ready-timeout", "ready_timeout_s", type=float, default=120.0,
              show_default=True, help="Seconds to wait for the demo server.")
@json_option
@handle_errors
def demo(config_path: str | None, serve: bool, runs_dir: str, http_port: int | None,
         grpc_port: int | None, metrics_port: int | None, ready_timeout_s: float,
         as_json: bool) -> None:
    """Start the bundled demo Triton server, run the local-backend job, show the report.

    The whole main job on this machine: render -> submit (local backend) -> the probe
    checks a real Triton -> collect -> report. The server stops when the demo ends.
    With --serve, only the server runs, until Ctrl-C.
    """
    from hpctriton.tools.demo import demo_server

    def say(text: str) -> None:
        if not as_json:
            click.echo(text, err=True)

    say("starting the demo Triton server (nvidia-pytriton's tritonserver, on the CPU)...")
    with demo_server(http_port, grpc_port, metrics_port, ready_timeout_s) as server:
        if serve:
            _serve(server, as_json)
            return
        from hpctriton.api import submit as api_submit
        from hpctriton.cli.runs import outcome_code, print_status, status_json
        from hpctriton.report.terminal import print_results

        say(f"Triton is ready: HTTP 127.0.0.1:{server.http_port}, gRPC 127.0.0.1:"
            f"{server.grpc_port}, metrics 127.0.0.1:{server.metrics_port}")
        source = config_path or "examples/local.yaml"
        say(shell_command("submit", "-c", source, "--backend", "local", "--wait",
                          *(a for o in server.overrides() for a in ("--set", o))))
        from hpctriton.tools.demo import demo_config

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
                echo_next([
                    (["report", run.run_id, "--html", "report.html"],
                     "this run as one HTML page"),
                    (["runs"], "every run you made, newest first"),
                    (["demo", "--serve"], "a demo server to point `check` at"),
                ], err=True)
    sys.exit(0 if results.ok and outcome_code(status) == 0 else 1)

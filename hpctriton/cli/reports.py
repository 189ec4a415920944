"""Reports: ``report`` (one run) and ``compare`` (runs side by side)."""

from __future__ import annotations

import sys

import click

from hpctriton.cli.app import (
    cli,
    console,
    emit_json,
    handle_errors,
    json_option,
    open_cli_run,
    runs_dir_option,
    shell_command,
    wide_option,
)
from hpctriton.cli.monitor import parse_tolerances, print_gates, tolerance_option


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write one self-contained HTML report with plots here.")
@click.option("--junit", "junit_path", type=click.Path(dir_okay=False),
              help="Write JUnit XML here (for CI systems).")
@wide_option
@json_option
@handle_errors
def report(run_ref: str | None, runs_dir: str | None, config_path: str | None,
           html_path: str | None, junit_path: str | None, wide: bool, as_json: bool) -> None:
    """Show a collected run's results (RUN: newest); exit 1 unless every check passed."""
    from hpctriton.api import NothingCollected

    with open_cli_run(run_ref, runs_dir, config_path) as run:
        try:
            results = run.results()
        except NothingCollected:
            click.echo(f"hpctriton: run {run.run_id} ({run.path}): nothing collected yet: "
                       f"`{shell_command('collect', run.run_id)}` fetches what has ended "
                       f"(`{shell_command('wait', run.run_id)}` waits first)", err=True)
            sys.exit(1)
        from hpctriton.report import write_html_report, write_junit

        if html_path:
            write_html_report(run, html_path)
        if junit_path:
            write_junit(run, junit_path)
        if as_json:
            emit_json(results.to_json())
        else:
            from hpctriton.report.terminal import print_results

            print_results(results, console(), wide=wide)
            for path, what in ((html_path, "HTML report"), (junit_path, "JUnit XML")):
                if path:
                    click.echo(f"wrote {what} {path}", err=True)
        sys.exit(0 if results.ok else 1)


@cli.command()
@click.argument("run_refs", metavar="RUN_A RUN_B [RUN...]", nargs=-1, required=True)
@runs_dir_option
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write the comparison as one HTML file with plots.")
@click.option("--baseline", "baseline_name", metavar="NAME",
              help="The first run is this named baseline (`hpctriton baseline set`): "
                   "then one RUN is enough.")
@click.option("--fail-on-regression", is_flag=True,
              help="Judge each run against the first beyond noise (docs/monitoring.md) and "
                   "exit 1 when a figure regressed; the rule is printed beside each verdict.")
@tolerance_option
@wide_option
@json_option
@handle_errors
def compare(run_refs: tuple[str, ...], runs_dir: str | None, config_path: str | None,
            html_path: str | None, baseline_name: str | None, fail_on_regression: bool,
            tolerances: tuple[str, ...], wide: bool, as_json: bool) -> None:
    """Compare runs side by side: the first is the baseline, differences are B - A
    (--wide: each difference with its unit, and every load metric)."""
    from hpctriton.errors import UsageError
    from hpctriton.report import compare_runs, comparison_json, write_comparison_html
    from hpctriton.report.terminal import print_comparison

    tol = parse_tolerances(tolerances)
    runs = [open_cli_run(ref, runs_dir, config_path) for ref in run_refs]
    if baseline_name is not None:
        from hpctriton.api import Run
        from hpctriton.runs.baselines import get_baseline
        from hpctriton.runs.record import RunRecord

        runs.insert(0, Run(RunRecord.load(get_baseline(baseline_name).path)))
    if len(runs) < 2:
        raise UsageError("compare needs at least two runs (or --baseline NAME and one)")
    comparison = compare_runs(runs)
    gates = []
    if fail_on_regression or tol:
        from hpctriton.results.regression import judge

        base = runs[0]
        gates = [judge(comparison.results[0], res, baseline_dir=base.record.results_dir,
                       run_dir=run.record.results_dir, tolerances=tol)
                 for run, res in zip(runs[1:], comparison.results[1:], strict=True)]
    if html_path:
        write_comparison_html(comparison, html_path)
    if as_json:
        emit_json({**comparison_json(comparison),
                   **({"gates": [g.to_json() for g in gates]} if gates else {})})
    else:
        print_comparison(comparison, console(), wide=wide)
        print_gates(gates, wide)
        if html_path:
            click.echo(f"wrote {html_path}", err=True)
    if fail_on_regression and any(g.regressed for g in gates):
        sys.exit(1)

"""Monitoring: ``schedule`` (and ``schedule stop``, ``schedule list``), ``history``,
``baseline``; ``collect --all`` and ``compare --baseline`` call in here too.

docs/monitoring.md describes all of it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from hpctriton.cli.app import (
    cli,
    cluster_options,
    config_option,
    console,
    echo_next,
    emit_json,
    handle_errors,
    json_option,
    load,
    open_cli_run,
    runs_dir_option,
    set_option,
    wide_option,
)


def tolerance_option(f: Any) -> Any:
    return click.option(
        "--tolerance", "tolerances", multiple=True, metavar="METRIC=LIMIT",
        help="How much worse a figure may be before it counts as a regression, replacing "
             "the noise rule for it: p99=10% (relative) or p99_ms=5 (in its unit). "
             "Repeatable.")(f)


def parse_tolerances(items: tuple[str, ...]) -> Any:
    from hpctriton.errors import UsageError
    from hpctriton.results.regression import parse_tolerances as parse

    try:
        return parse(items)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _due_text(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    delta = epoch - time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
    return f"{stamp} (in {delta:.0f} s)" if delta >= 0 else f"{stamp} (late {-delta:.0f} s)"


# ------------------------------------------------------------------- schedule


@cli.group(invoke_without_command=True)
@config_option
@cluster_options
@set_option
@click.option("--every", metavar="DURATION", help="How often: 20s, 30m, 1h, 2d.")
@click.option("--count", type=click.IntRange(min=1), help="Stop after this many runs.")
@click.option("--until", "until", metavar="TIME",
              help="Start no run after this time (2026-12-01T18:00, local time) or this "
                   "long from now (6h).")
@click.option("--name", help="The schedule's name (default: the config's name or the "
                             "cluster's, and 4 hex digits).")
@click.option("--dry-run", is_flag=True, help="Show what would be submitted; write nothing.")
@click.option("--runs-dir", type=click.Path(file_okay=False), help="Override runs_dir.")
@json_option
@click.pass_context
@handle_errors
def schedule(ctx: click.Context, config_path: str, cluster: str | None, backend: str | None,
             overrides: tuple[str, ...], every: str | None, count: int | None,
             until: str | None, name: str | None, dry_run: bool, runs_dir: str | None,
             as_json: bool) -> None:
    """Run the checks again and again on the cluster itself: a Slurm job chain, each job
    submitting the next (sbatch --begin) before its checks. `schedule stop NAME` ends
    it; `schedule list` shows every schedule (docs/monitoring.md)."""
    if ctx.invoked_subcommand is not None:
        return
    from hpctriton.errors import UsageError
    from hpctriton.runs import schedules

    if not every:
        raise UsageError("schedule needs --every (20s, 30m, 1h); or a subcommand: "
                         "`schedule list`, `schedule stop NAME`")
    config = load(config_path, overrides)
    if dry_run:
        plan = schedules.plan_schedule(config, cluster, every=every, count=count or 0,
                                       until=until, name=name, runs_dir=runs_dir,
                                       backend=backend)
        if as_json:
            emit_json({"dry_run": True, **plan.to_json(), "chain_script": plan.chain_script})
            return
        limit = (f"{plan.count} runs" if plan.count else "") + (
            f" until {time.strftime('%Y-%m-%d %H:%M', time.localtime(plan.until_epoch))}"
            if plan.until_epoch else "")
        click.echo(f"dry run: would start schedule {plan.name}: every {plan.interval_s} s "
                   f"({limit.strip() or 'until stopped'}), {plan.n_tasks} task(s) per run, "
                   f"in {plan.host}:{plan.remote_dir}; record in {plan.local_dir}")
        click.echo("each run is one job of this chain script (chain.sh):")
        click.echo(plan.chain_script)
        return
    sched = schedules.start_schedule(config, cluster, every=every, count=count or 0,
                                     until=until, name=name, runs_dir=runs_dir,
                                     backend=backend)
    if as_json:
        emit_json(sched.to_json())
        return
    click.echo(sched.name)
    click.echo(f"schedule {sched.name}: first run submitted as job {sched.first_job} on "
               f"{sched.host}, then every {sched.interval_s} s; runs in "
               f"{sched.remote_dir}/runs", err=True)
    echo_next([(["schedule", "list"], "every schedule, its next due time and last verdict"),
               (["collect", "--all", sched.name], "fetch every run that ended"),
               (["history", sched.name], "its runs over time"),
               (["schedule", "stop", sched.name], "end the chain")], err=True)


@schedule.command("stop")
@click.argument("name")
@json_option
@handle_errors
def schedule_stop(name: str, as_json: bool) -> None:
    """Stop a schedule: writes its STOP file; the next job reads it and ends the chain."""
    from hpctriton.runs import schedules

    sched = schedules.find_schedule(name)
    schedules.stop_schedule(sched)
    if as_json:
        emit_json({"schedule": sched.name, "stop_file": f"{sched.remote_dir}/STOP"})
    else:
        click.echo(f"schedule {sched.name}: stop file written ({sched.host}:"
                   f"{sched.remote_dir}/STOP); the next job finds it and ends the chain")


@schedule.command("list")
@click.option("--offline", is_flag=True,
              help="Do not connect: show what was last read from the clusters.")
@json_option
@handle_errors
def schedule_list(offline: bool, as_json: bool) -> None:
    """Every schedule you made: its next due time and its last verdict (reads each
    schedule's record on its cluster: one SSH call each)."""
    from hpctriton.errors import HpctritonError
    from hpctriton.runs import schedules
    from hpctriton.tools.monitor import baseline_record

    rows: list[dict[str, Any]] = []
    for sched in schedules.all_schedules():
        problem = None
        if offline:
            members = schedules.local_members(sched)
        else:
            try:
                with sched.transport() as transport:
                    members = schedules.read_members(sched, transport)
            except HpctritonError as exc:
                problem = str(exc).splitlines()[0]
                members = schedules.local_members(sched)
        from hpctriton.results.history import schedule_history

        history = schedule_history(sched, members, baseline=baseline_record(sched, None))
        last = history.runs[-1] if history.runs else None
        state = ("stopped" if members.stop_file or any(m.stopped for m in members.links)
                 else "ended" if members.ended else "active")
        rows.append({"name": sched.name, "cluster": sched.cluster, "host": sched.host,
                     "every_s": sched.interval_s, "state": state,
                     "runs": len(members.ran), "next_due": members.next_due(),
                     "last_run": last.run_id if last else None,
                     "last_verdict": last.verdict if last else None, "problem": problem})
    if as_json:
        emit_json({"schedules": [{**r, "next_due": schedules._iso(r["next_due"])}
                                 for r in rows]})
        return
    if not rows:
        click.echo("no schedules yet: `hpctriton schedule --cluster X --every 30m` makes one")
        return
    from rich.table import Table
    from rich.text import Text

    from hpctriton.report.fit import fitted

    table = Table(title="schedules")
    table.add_column("name", overflow="fold")
    table.add_column("every", justify="right", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("runs", justify="right", no_wrap=True)
    table.add_column("next due", overflow="fold")
    table.add_column("last verdict", overflow="fold")
    for r in rows:
        table.add_row(Text(r["name"]), f"{r['every_s']} s", r["state"], str(r["runs"]),
                      _due_text(r["next_due"]) if r["state"] == "active" else "-",
                      Text(f"{r['last_verdict']} ({r['last_run']})" if r["last_run"]
                           else "-"))
    out = console()
    out.print(fitted(table, out))
    for r in rows:
        if r["problem"]:
            click.echo(f"hpctriton: schedule {r['name']}: not read from its cluster "
                       f"({r['problem']}); shown as last read", err=True)


# ---------------------------------------------------------------- collect --all


def collect_all(ref: str | None, max_mb: int | None, as_json: bool) -> None:
    """``collect --all [SCHEDULE]``."""
    from hpctriton.runs import schedules
    from hpctriton.tools.monitor import collect_schedule

    sched = schedules.find_schedule(ref)
    done = collect_schedule(sched, max_mb=max_mb)
    if as_json:
        emit_json(done.to_json())
    else:
        fetched = sorted(k for k, v in done.reports.items() if v.fetched)
        already = sorted(k for k, v in done.reports.items() if not v.fetched and v.already)
        click.echo(f"schedule {sched.name}: fetched {len(fetched)} run(s) in one stream"
                   + (f" ({', '.join(fetched)})" if fetched else "")
                   + (f", {len(already)} already here" if already else ""))
        for run_id, report in sorted(done.reports.items()):
            for line in report.problems():
                click.echo(f"  {run_id}: {line}", err=True)
        for event in done.notified:
            click.echo(f"  notified: {event['run_id']} {event['event']}", err=True)
        for problem in done.notify_problems:
            click.echo(f"  notify failed: {problem}", err=True)
        echo_next([(["history", sched.name], "its runs over time")], err=True)
    sys.exit(0 if done.complete else 1)


# --------------------------------------------------------------------- history


def _config_name(config_path: str) -> str | None:
    """The config's ``name:`` (read on its own, as its runs_dir is): its runs are judged
    against the baseline of that name, as ``submit --wait`` judges them for notify."""
    from hpctriton.config import yamlsrc

    data = yamlsrc.load(config_path).data
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else None


@cli.command()
@click.argument("schedule_ref", metavar="[SCHEDULE]", required=False)
@click.option("-c", "--config", "config_path", default=None, type=click.Path(dir_okay=False),
              help="Every run in this config's runs_dir instead of a schedule's.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False),
              help="Write one HTML page with trend lines here.")
@click.option("--baseline", "baseline_name", metavar="NAME",
              help="Judge regressions against this baseline (default: the baseline named "
                   "like the schedule, or with -c like the config's name:, if one is set).")
@tolerance_option
@click.option("--refresh", is_flag=True,
              help="Read the schedule's record on the cluster first (one SSH call; "
                   "`collect --all` does this and fetches the results).")
@wide_option
@json_option
@handle_errors
def history(schedule_ref: str | None, config_path: str | None, html_path: str | None,
            baseline_name: str | None, tolerances: tuple[str, ...], refresh: bool,
            wide: bool, as_json: bool) -> None:
    """Every run of a schedule (newest schedule by default) or of a config, oldest
    first: verdict (ok, failed, regressed, missing), checks and load figures."""
    from hpctriton.results.history import runs_history
    from hpctriton.tools.monitor import baseline_record, history_of_schedule

    tol = parse_tolerances(tolerances)
    if config_path is not None:
        from hpctriton.cli.app import cli_runs_root
        from hpctriton.runs.record import list_runs

        root = cli_runs_root(None, config_path)
        hist = runs_history(list_runs(root), f"runs in {root}",
                            baseline=baseline_record(None, baseline_name,
                                                     config_name=_config_name(config_path)),
                            tolerances=tol)
    else:
        from hpctriton.runs import schedules

        sched = schedules.find_schedule(schedule_ref)
        hist = history_of_schedule(sched, refresh=refresh, baseline=baseline_name,
                                   tolerances=tol)
    if html_path:
        from hpctriton.report.history_html import write_history_html

        write_history_html(hist, html_path)
    if as_json:
        emit_json(hist.to_json())
        return
    from hpctriton.report.fit import fitted
    from hpctriton.report.history_text import history_notes, history_table

    out = console()
    if hist.runs:
        out.print(fitted(history_table(hist, wide=wide), out))
    else:
        click.echo(f"{hist.title}: no runs collected yet")
    for line in history_notes(hist):
        click.echo(line)
    if html_path:
        click.echo(f"wrote {html_path}", err=True)


# -------------------------------------------------------------------- baseline


@cli.group()
def baseline() -> None:
    """Named baselines: runs that later runs are judged against."""


@baseline.command("set")
@click.argument("run_ref", metavar="RUN")
@runs_dir_option
@click.option("--name", default="default", show_default=True, help="The baseline's name.")
@json_option
@handle_errors
def baseline_set(run_ref: str, runs_dir: str | None, config_path: str | None, name: str,
                 as_json: bool) -> None:
    """Mark RUN (collected) as the baseline NAME (a schedule's runs are judged against
    the baseline named like it)."""
    from hpctriton.runs.baselines import set_baseline

    with open_cli_run(run_ref, runs_dir, config_path) as run:
        found = set_baseline(run.record, name)
    if as_json:
        emit_json(found.to_json())
    else:
        click.echo(f"baseline {found.name}: run {found.run_id} ({found.path})")


@baseline.command("list")
@json_option
@handle_errors
def baseline_list(as_json: bool) -> None:
    """Every baseline."""
    from hpctriton.runs.baselines import all_baselines

    found = all_baselines()
    if as_json:
        emit_json({"baselines": [b.to_json() for b in found]})
        return
    if not found:
        click.echo("no baselines yet: `hpctriton baseline set RUN --name NAME`")
    for b in found:
        click.echo(f"{b.name}: {b.run_id} (set {b.set_at}; {b.path})")


# ---------------------------------------------------------- compare --baseline


def print_gates(gates: list[Any], wide: bool) -> None:
    """Each judged figure with its verdict and the rule beside it (regressions always;
    --wide: every figure)."""
    for gate in gates:
        shown = [j for j in gate.judgements if wide or j.verdict == "regressed"]
        click.echo(f"regression gate: {gate.run} against baseline {gate.baseline}: "
                   + ("REGRESSED" if gate.regressed else "no regression")
                   + f" ({len(gate.regressions)} of {len(gate.judgements)} figures)")
        for j in shown:
            values = (f"{j.baseline:g} -> {j.value:g}{(' ' + j.unit) if j.unit else ''}"
                      if j.baseline is not None and j.value is not None else "")
            click.echo(f"  {j.verdict:<10} {j.subject} {j.metric} {values}")
            click.echo(f"             rule: {j.rule}")

"""Runs: ``submit``, ``status``, ``wait``, ``cancel``, ``resubmit``, ``collect``, ``runs``.

A command about a run takes ``RUN`` (an id, a unique prefix, or a run folder) and
defaults to the newest run this user made, wherever its runs_dir is (the run index,
:mod:`hpctriton.runs.index`); ``--runs-dir`` or ``-c`` narrow it to one folder.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from hpctriton.cli.app import (
    cli,
    cli_runs_root,
    cluster_options,
    config_option,
    console,
    default_runs_root,
    echo_next,
    emit_json,
    handle_errors,
    json_option,
    load,
    note_dropped,
    open_cli_run,
    runs_dir_option,
    set_option,
    wide_option,
)


def print_status(run: Any, status: Any) -> None:
    from hpctriton.report.fit import fitted
    from hpctriton.report.run_tables import status_table

    out = console()
    out.print(fitted(status_table(run.record, status), out))
    counts = ", ".join(f"{n} {k}" for k, n in sorted(status.counts().items()))
    click.echo(f"{run.run_id}: {status.overall.value} ({counts})")


def status_json(run: Any, status: Any) -> dict[str, Any]:
    return {"run_id": run.run_id, "backend": run.record.backend, "host": run.record.host,
            "overall": status.overall.value, "done": status.done, "counts": status.counts(),
            "tasks": [s.to_json() for _, s in sorted(status.tasks.items())]}


def reasons_on_stderr() -> Callable[[Any], None]:
    """An ``on_change`` callback printing why tasks are pending, when that changes."""
    from hpctriton.runs.progress import PendingReasons

    return PendingReasons(lambda line: click.echo(f"hpctriton: {line}", err=True))


def collect_quietly(run: Any) -> Any:
    """Collect after a wait: a task that was not accepted is reported on stderr (its
    results are not there), the others are kept; returns the collect report."""
    from hpctriton.runs.collect import CollectIncomplete

    try:
        report = run.collect()
    except CollectIncomplete as exc:
        report = exc.report
    for line in report.problems():
        click.echo(f"hpctriton: collect: {line}", err=True)
    return report


def notify_after_collect(run: Any, *, ended: bool) -> Any:
    """``notify:`` for the run just collected (docs/monitoring.md): said on stderr; a
    notification that failed changes no exit code. Returns the notice (for ``--json``)."""
    from hpctriton.tools.monitor import notify_run

    notice = notify_run(run.record, ended=ended)
    if notice.notified is not None:
        click.echo(f"hpctriton: notified: {run.run_id} {notice.notified['event']}", err=True)
    for problem in notice.problems:
        click.echo(f"hpctriton: notify failed: {problem}", err=True)
    return notice


def notify_json(notice: Any) -> dict[str, Any]:
    """``{"notify": ...}`` in ``--json`` output when the config has ``notify:``."""
    return {"notify": notice.to_json()} if notice.configured else {}


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
                       f"{jobs} on {run.record.host}; recorded in {run.path}")
        if not wait_:
            if as_json:
                emit_json({"run_id": run.run_id, "path": str(run.path),
                           "remote_dir": run.record.remote_dir,
                           "jobs": [j.job_id for j in run.record.jobs]})
            else:
                echo_next([
                    (["wait", run.run_id], "until its tasks end, then collect the results"),
                    (["status", run.run_id], "each task's state, now"),
                    (["report", run.run_id], "the results, once collected"),
                ])
            return
        status = run.wait(timeout_s=timeout_s, progress=not as_json, collect=False,
                          **({"on_change": reasons_on_stderr()} if as_json else {}))
        report = collect_quietly(run)
        notice = notify_after_collect(run, ended=status.done)
        results = run.results()
        if as_json:
            emit_json({**status_json(run, status), "collected": report.to_json(),
                       "results": results.to_json(), **notify_json(notice)})
        else:
            print_status(run, status)
            click.echo(f"collected {len(report.fetched)} task(s) into {report.target}")
            from hpctriton.report.terminal import print_results

            print_results(results, console())
            echo_next([(["report", run.run_id, "--html", "report.html"],
                         "this run as one HTML page with plots")])
        sys.exit(max(outcome_code(status), 0 if results.ok and report.complete else 1))


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
              help="Collect the results when the run has ended (as Run.wait() does).")
@json_option
@handle_errors
def wait(run_ref: str | None, runs_dir: str | None, config_path: str | None,
         timeout_s: float | None, do_collect: bool, as_json: bool) -> None:
    """Wait for a run's tasks to end (state files, scheduler hints at most every 30 s),
    then collect their results (RUN: newest)."""
    with open_cli_run(run_ref, runs_dir, config_path) as run:
        st = run.wait(timeout_s=timeout_s, progress=not as_json, collect=False,
                      **({"on_change": reasons_on_stderr()} if as_json else {}))
        report = collect_quietly(run) if do_collect and st.done else None
        collected = report.to_json() if report is not None else None
        notice = notify_after_collect(run, ended=True) if report is not None else None
        if as_json:
            emit_json({**status_json(run, st), "collected": collected,
                       **(notify_json(notice) if notice is not None else {})})
        else:
            print_status(run, st)
            if report is not None:
                click.echo(f"collected into {report.target}")
                echo_next([(["report", run.run_id], "the results")])
            elif st.done:
                echo_next([(["collect", run.run_id], "fetch the results")])
        incomplete = report is not None and not report.complete
        sys.exit(max(outcome_code(st) if st.done else 1, 1 if incomplete else 0))


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("--task", "tasks", type=int, multiple=True, help="Only this task (repeatable).")
@json_option
@handle_errors
def cancel(run_ref: str | None, runs_dir: str | None, config_path: str | None,
           tasks: tuple[int, ...], as_json: bool) -> None:
    """Cancel a run (or some of its tasks; RUN: newest)."""
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
            echo_next([(["wait", run.run_id], "until they end, then collect")])


@cli.command()
@click.argument("run_ref", metavar="[RUN]", required=False)
@runs_dir_option
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False),
              help="Collect into this folder (new, empty, or an earlier collect's) instead "
                   "of the run's results/.")
@click.option("--max-size", "max_mb", type=click.IntRange(min=1), metavar="MB",
              help="Extract at most this many MB (default: the cluster's collect_max_mb, "
                   "2048).")
@click.option("--all", "all_runs", is_flag=True,
              help="RUN is a schedule (default: the newest): fetch every run of it that "
                   "ended, through one SSH connection and one tar stream, and notify.")
@json_option
@handle_errors
def collect(run_ref: str | None, runs_dir: str | None, config_path: str | None,
            out_dir: str | None, max_mb: int | None, all_runs: bool, as_json: bool) -> None:
    """Fetch results of ended tasks through one tar stream, verified (RUN: newest).

    Exit 0 when everything fetched verified; 1 when a task arrived unverified (no
    manifest), files on the cluster were not regular files (not fetched) or a local
    file was left alone; 3 when a task was refused or corrupted (the others arrive).
    """
    from hpctriton.runs.collect import CollectIncomplete

    if all_runs:
        from hpctriton.cli.monitor import collect_all
        from hpctriton.errors import UsageError

        if out_dir is not None or runs_dir is not None or config_path is not None:
            raise UsageError("collect --all takes a schedule, without -o, --runs-dir or -c")
        collect_all(run_ref, max_mb, as_json)
        return

    with open_cli_run(run_ref, runs_dir, config_path) as run:
        failure: CollectIncomplete | None = None
        try:
            report = run.collect(out_dir, max_mb=max_mb)
        except CollectIncomplete as exc:
            failure, report = exc, exc.report
        # -o: the results are not in the run folder, so the run is not judged here
        notice = notify_after_collect(run, ended=False) if out_dir is None else None
        if as_json:
            emit_json({"run_id": run.run_id, **report.to_json(),
                       **(notify_json(notice) if notice is not None else {})})
        else:
            click.echo(f"run {run.run_id}: fetched {len(report.fetched)} task(s), "
                       f"{len(report.already)} already here, into {report.target}")
            if report.missing:
                click.echo(f"  nothing to fetch yet for tasks: {report.missing}")
            for line in report.problems():
                click.echo(f"  {line}", err=True)
        if failure is not None:
            sys.exit(failure.exit_code)
        sys.exit(0 if report.complete else 1)


@cli.command()
@runs_dir_option
@click.option("-n", "--limit", type=click.IntRange(min=1), default=20, show_default=True)
@wide_option
@json_option
@handle_errors
def runs(runs_dir: str | None, config_path: str | None, limit: int, wide: bool,
         as_json: bool) -> None:
    """List the runs you made, newest first, wherever their runs_dir is (--runs-dir or
    -c: only those in one folder)."""
    from hpctriton.report.run_tables import runs_table, short_path, submit_failure

    if runs_dir is not None or config_path is not None:
        from hpctriton.runs.record import list_runs

        root = cli_runs_root(runs_dir, config_path)
        records = list_runs(root)[:limit]
        empty = f"no runs in {root}"
    else:
        from hpctriton.runs.index import all_runs, state_dir

        found = all_runs(also=default_runs_root(), limit=limit)
        note_dropped(found.dropped)
        records = found.records
        empty = (f"no runs yet (none in your run index, {state_dir()}, nor here): "
                 "`hpctriton submit` makes one, `hpctriton demo` a first one")
    if as_json:
        emit_json([{"run_id": r.run_id, "backend": r.backend, "cluster": r.cluster,
                    "host": r.host, "tasks": r.n_tasks, "created_at": r.created_at,
                    "submitted_at": r.submitted_at, "path": str(r.path),
                    "jobs": [j.job_id for j in r.jobs], "submit_failed": submit_failure(r)}
                   for r in records])
        return
    if not records:
        click.echo(empty)
        return
    from hpctriton.report.fit import fitted

    folders = {r.path.parent for r in records}
    title = "runs, newest first"
    if len(folders) == 1:
        title = f"runs in {short_path(next(iter(folders)))}, newest first"
    out = console()
    out.print(fitted(runs_table(records, wide=wide, title=title), out))

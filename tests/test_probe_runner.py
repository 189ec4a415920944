"""The runner without a server: the order checks run in comes from what each check
module declares, and the runner keeps going when a check crashes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hpctriton_probe import checks, runner
from hpctriton_probe.checks.base import Check, CheckContext, Phase
from hpctriton_probe.spec import CHECK_OPTIONS, CheckSpec, LoadOptions, ServerSpec, TaskSpec


def _task(*specs: CheckSpec) -> TaskSpec:
    # Nothing listens on port 9: the fake checks below never call the server.
    return TaskSpec(task=0, server=ServerSpec(host="127.0.0.1", http_port=9),
                    models=["simple"], checks=list(specs))


def _names(specs: list) -> list:
    return [(s.name, getattr(s.options, "tasks", None)) for s in specs]


def test_every_check_name_has_a_module_that_declares_it() -> None:
    for name, options in CHECK_OPTIONS.items():
        declared = checks.by_name(name)
        assert declared.name == name and declared.options is options
    with pytest.raises(KeyError):
        checks.by_name("base")


def test_checks_run_in_the_spec_order_except_what_their_phases_say() -> None:
    specs = [CheckSpec("statistics"), CheckSpec("health"), CheckSpec("load"),
             CheckSpec("metrics"), CheckSpec("load", LoadOptions(tasks=3))]
    # statistics and metrics measure the others: last (in the spec's order); a load from
    # several tasks: first
    assert _names(runner.run_order(specs, launched=3)) == [
        ("load", 3), ("health", None), ("load", 1), ("statistics", None), ("metrics", None)]
    # a job that started one probe has no shared schedule to keep
    assert _names(runner.run_order(specs, launched=1)) == [
        ("health", None), ("load", 1), ("load", 3), ("statistics", None), ("metrics", None)]


def test_other_ranks_take_part_only_in_checks_that_take_them() -> None:
    specs = [CheckSpec("health"), CheckSpec("load", LoadOptions(tasks=2)),
             CheckSpec("load", LoadOptions(tasks=3)), CheckSpec("statistics")]
    assert _names(runner.rank_share(specs, rank=1, launched=3)) == [("load", 2), ("load", 3)]
    assert _names(runner.rank_share(specs, rank=2, launched=3)) == [("load", 3)]
    assert runner.rank_share(specs, rank=1, launched=1) == []


def _fake(name: str, calls: list, *, phase: Phase = Phase.MAIN, hook: bool = False,
          crash: bool = False, ranks: Callable[[Any, int], int] = lambda o, n: 1) -> Check:
    def run(ctx: CheckContext) -> Iterator[Any]:
        calls.append(("run", name, ctx.launch.rank))
        if crash:
            raise RuntimeError("a bug")
        yield ctx.entry(None, None, "pass", name)

    def before_all(ctx: CheckContext) -> None:
        calls.append(("before_all", name, ctx.launch.rank))

    return Check(name, CHECK_OPTIONS[name], run, phase=phase,
                 before_all=before_all if hook else None, ranks=ranks)


def _declare(monkeypatch: pytest.MonkeyPatch, calls: list, **extra: Any) -> None:
    declared = {
        "statistics": _fake("statistics", calls, phase=Phase.LAST, hook=True),
        "health": _fake("health", calls, **extra),
        "metrics": _fake("metrics", calls),
        "load": _fake("load", calls, ranks=lambda o, n: min(o.tasks, n)),
    }
    monkeypatch.setattr(runner, "by_name", declared.__getitem__)


def test_hooks_run_before_every_check_and_entries_follow_the_run_order(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    calls: list = []
    _declare(monkeypatch, calls)
    task = _task(CheckSpec("statistics"), CheckSpec("health"),
                 CheckSpec("load", LoadOptions(tasks=2)), CheckSpec("metrics"))
    results = runner.run_task(task, str(tmp_path), run_id="r", load_ranks=2)
    assert calls == [("before_all", "statistics", 0), ("run", "load", 0),
                     ("run", "health", 0), ("run", "metrics", 0), ("run", "statistics", 0)]
    assert [e["message"] for e in results["checks"]] == ["load", "health", "metrics",
                                                         "statistics"]
    assert results["run"]["checks_planned"] == ["statistics", "health", "load", "metrics"]
    with open(os.path.join(str(tmp_path), "results.json")) as fh:
        assert json.load(fh) == json.loads(json.dumps(results))


def test_a_crashing_check_is_an_error_entry_and_the_next_checks_still_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list = []
    _declare(monkeypatch, calls, crash=True)
    results = runner.run_task(_task(CheckSpec("health"), CheckSpec("metrics")))
    health, metrics = results["checks"]
    assert health["status"] == "error" and health["check"] == "health"
    assert health["message"] == "the probe failed in this check: RuntimeError: a bug"
    assert metrics["status"] == "pass" and results["summary"]["error"] == 1


def test_a_rank_above_zero_runs_only_its_share_and_writes_no_results(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    calls: list = []
    _declare(monkeypatch, calls)
    task = _task(CheckSpec("statistics"), CheckSpec("health"),
                 CheckSpec("load", LoadOptions(tasks=2)), CheckSpec("load"))
    assert runner.run_load_rank(task, str(tmp_path), rank=1, ranks=2, start_at=None) == 0
    assert calls == [("run", "load", 1)]
    assert not os.path.exists(os.path.join(str(tmp_path), "results.json"))

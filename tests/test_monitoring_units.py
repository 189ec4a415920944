"""Monitoring without services (issue 17): durations, the chain's record and its gaps,
the noise rules of the regression gate, history verdicts and tables, notify, and
``doctor`` telling whether the site has ``scrontab`` (both ways, through the real
doctor script on this machine)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from hpctriton.cli import cli
from hpctriton.config import config_from_data
from hpctriton.config.models import NotifyConfig
from hpctriton.errors import UsageError
from hpctriton.report.history_text import history_table
from hpctriton.results.history import History, HistoryRun, runs_history
from hpctriton.results.model import Results
from hpctriton.results.regression import (
    judge,
    parse_tolerances,
    percentile_interval,
    rank_interval,
    wilson_interval,
)
from hpctriton.runs import schedules
from hpctriton.runs.record import RunRecord
from hpctriton.tools.notify import Event, send
from hpctriton_probe.load.hist import Histogram

DATA = Path(__file__).parent / "data"


# ------------------------------------------------------------------- durations


@pytest.mark.parametrize("text,seconds", [("20s", 20), ("30m", 1800), ("1h", 3600),
                                          ("2d", 172800), ("45", 45), ("1.5h", 5400)])
def test_durations_take_units(text: str, seconds: int) -> None:
    assert schedules.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 weeks", "0s", "-3m"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="duration"):
        schedules.parse_duration(text)


def test_until_takes_a_time_or_a_duration() -> None:
    assert schedules.parse_until("6h", now=1000.0) == 1000 + 6 * 3600
    assert schedules.parse_until("2099-01-01T00:00:00+00:00") == 4070908800
    with pytest.raises(UsageError, match="past"):
        schedules.parse_until("2001-01-01T00:00")


# ------------------------------------------------------------------ the chain


def sched(tmp_path: Path, interval: int = 60, count: int = 0) -> schedules.Schedule:
    s = schedules.Schedule(name="n", backend="slurm", cluster="c", host="h",
                           remote_dir="/r/schedules/n", interval_s=interval, count=count,
                           path=tmp_path / "runs" / "schedules" / "n")
    return s


def tsv(*rows: tuple[object, ...]) -> str:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows)


def test_members_record_links_and_their_states(tmp_path: Path) -> None:
    text = tsv(("submitted", 1, "n-0001", 11, 1000, "-"), ("started", 1, "n-0001", 11, 1001, "-"),
               ("submitted", 2, "n-0002", 12, 1061, "-"), ("ended", 1, "n-0001", 11, 1005, 1),
               ("started", 2, "n-0002", 12, 1070, "-"),
               ("submitted", 3, "n-0003", 13, 1130, "-"), ("garbage", "line"))
    members = schedules.parse_members(text, sched(tmp_path), now=1100)
    states = [(m.run_id, m.state, m.job_id, m.exit_code) for m in members.links]
    assert states == [("n-0001", "ended", "11", 1), ("n-0002", "running", "12", None),
                      ("n-0003", "pending", "13", None)]
    assert members.next_due() == 1130 and not members.ended


def test_a_link_that_never_started_is_missing_and_so_is_every_due_run_after_it(
        tmp_path: Path) -> None:
    text = tsv(("submitted", 1, "n-0001", 11, 1000, "-"), ("started", 1, "n-0001", 11, 1000, "-"),
               ("ended", 1, "n-0001", 11, 1003, 0),
               ("submitted", 2, "n-0002", 12, 1060, "-"))  # cancelled while pending
    # n-0004 was due at 1180 and is 61 s late (grace: 60 s); n-0005 is due at 1240
    members = schedules.parse_members(text, sched(tmp_path), now=1180 + 60 + 1)
    assert [(m.run_id, m.state) for m in members.links] == [
        ("n-0001", "ended"), ("n-0002", "missing"), ("n-0003", "missing"),
        ("n-0004", "missing")]
    # not yet late enough: not missing
    early = schedules.parse_members(text, sched(tmp_path), now=1060 + 30)
    assert [m.state for m in early.links] == ["ended", "pending"]
    # a count bounds the gaps; a failed submit breaks the chain the same way
    failed = tsv(("started", 1, "n-0001", 11, 1000, "-"),
                 ("submit-failed", 2, "n-0002", "-", 1060, "sbatch: error: down"))
    bounded = schedules.parse_members(failed, sched(tmp_path, count=3), now=10_000)
    assert [m.run_id for m in bounded.links if m.missing] == ["n-0002", "n-0003"]
    assert bounded.links[1].submit_error == "sbatch: error: down"


def test_a_stopped_or_final_chain_has_no_gaps(tmp_path: Path) -> None:
    text = tsv(("started", 1, "n-0001", 11, 1000, "-"), ("final", 1, "n-0001", 11, 1000, "-"),
               ("ended", 1, "n-0001", 11, 1002, 0))
    members = schedules.parse_members(text, sched(tmp_path), now=99_999)
    assert members.ended and [m.state for m in members.links] == ["ended"]
    stopped = schedules.parse_members(
        tsv(("submitted", 2, "n-0002", 12, 1060, "-"), ("stopped", 2, "n-0002", 12, 1061, "-")),
        sched(tmp_path), now=99_999)
    assert stopped.ended and stopped.links[0].state == "stopped"


def test_the_chain_script_submits_the_next_link_before_its_checks(tmp_path: Path) -> None:
    from hpctriton.schedulers import ChainSpec, RenderContext, get_scheduler

    config = config_from_data({"server": {"host": "h", "http_port": 1}, "models": ["m"],
                               "clusters": {"c": {"backend": "slurm", "host": "x",
                                                  "slurm": {"partition": "debug"}}}})
    _, cluster = config.target("c")
    slurm = get_scheduler("slurm")
    text = slurm.chain_script(RenderContext("c", cluster, "n", 1),
                              ChainSpec("n", "/w/100%/schedules/n", 1800, 4, 0, 2))
    assert text.index("sbatch --parsable --begin=now+1800") < text.index("bash job.sh")
    assert "#SBATCH --partition=debug" in text and "#SBATCH --job-name=hpct-n" in text
    assert "--output=/w/100%%/schedules/n/runs" in text  # Slurm's % escaped
    assert "[ -e STOP ]" in text and "seq 0 $(( 2 - 1 ))" in text
    path = tmp_path / "chain.sh"
    path.write_text(text)
    assert os.system(f"bash -n {shlex.quote(str(path))}") == 0


def test_schedule_names_are_checked() -> None:
    assert schedules.check_name("nightly-a100") == "nightly-a100"
    with pytest.raises(UsageError):
        schedules.check_name("../x")


# ----------------------------------------------------------------- noise rules


def test_rank_interval_of_a_p99_from_300_requests() -> None:
    # 300 x 0.99 = 297, spread 2.576 x sqrt(300 x 0.99 x 0.01) = 4.44: ranks 292..300
    low, high = rank_interval(300, 0.99)
    assert (low, high) == (292, 300)
    low, high = rank_interval(10_000, 0.5)
    assert (low, high) == (4871, 5130)  # 5000 -+ 2.576 x 50, the upper rank inclusive


def test_percentile_interval_contains_the_truth_and_narrows_with_more_requests() -> None:
    def hist(n: int) -> Histogram:
        h = Histogram()
        for i in range(n):  # uniform 10..20 ms in microseconds
            h.record(10_000 + (i * 7919) % 10_000)
        return h

    small, big = percentile_interval(hist(200), 0.9), percentile_interval(hist(20_000), 0.9)
    assert small and big
    slack = 19.0 * 2 ** -8  # the histogram's resolution
    assert small[0] - slack <= 19.0 <= small[1] + slack
    assert big[0] - slack <= 19.0 <= big[1] + slack
    assert big[1] - big[0] < small[1] - small[0]


def test_wilson_interval() -> None:
    low, high = wilson_interval(0, 1000)
    assert low == 0.0 and 0 < high < 0.01
    low, high = wilson_interval(50, 100)
    assert low < 0.5 < high


def test_tolerances_parse_and_name_their_figure() -> None:
    tol = parse_tolerances(["p99_ms=10%", "throughput_rps=5", "p50=2.5%"])
    assert {k: (v.value, v.relative) for k, v in tol.items()} == {
        "p99": (10.0, True), "throughput": (5.0, False), "p50": (2.5, True)}
    with pytest.raises(ValueError, match="METRIC"):
        parse_tolerances(["p99"])


def test_gate_on_recorded_runs_judges_load_figures_and_prints_its_rule() -> None:
    a = Results.from_run_dir(DATA / "report_run_a")
    b = Results.from_run_dir(DATA / "report_run_b")
    same = judge(a, a)
    assert not same.regressed
    load = [j for j in same.judgements if j.section == "load"]
    assert load and all(j.verdict in ("same", "not judged") for j in load)
    # without histograms (these fixtures carry none) latency is not judged, and says so
    assert any("no latency histogram" in j.rule for j in load)
    # a tolerance judges every figure it names, with its rule
    gate = judge(a, b, tolerances=parse_tolerances(["p99=0%", "throughput=0%"]))
    judged = [j for j in gate.judgements if j.metric in ("p99", "throughput")]
    assert judged and all(j.rule == "tolerance 0% (set by you)" for j in judged)
    worse = [j for j in judged if (j.metric == "p99" and j.value > j.baseline)
             or (j.metric == "throughput" and j.value < j.baseline)]
    assert {j.verdict for j in worse} <= {"regressed"}
    assert gate.regressed == bool(worse)


def test_a_check_that_passed_and_now_fails_is_a_regression() -> None:
    a = Results.from_run_dir(DATA / "report_run_a")
    data = json.loads((DATA / "report_run_a/results/0/results.json").read_text())
    for c in data["checks"]:
        if c["check"] == "health":
            c["status"] = "fail"
    failing = Results.from_data(data)
    gate = judge(a, failing)
    assert gate.regressed
    assert any(j.section == "status" and "pass in the baseline, fail now" in j.rule
               for j in gate.regressions)


# -------------------------------------------------------------------- history


def test_history_of_a_config_orders_runs_and_gives_verdicts(tmp_path: Path) -> None:
    records = [RunRecord.load(DATA / name) for name in ("report_run_b", "report_run_a")]
    hist = runs_history(records, "runs")
    assert [r.run_id for r in hist.runs] == sorted(r.run_id for r in hist.runs) or \
        [r.when for r in hist.runs] == sorted(r.when or "" for r in hist.runs)
    assert {r.verdict for r in hist.runs} <= {"ok", "failed"}
    assert all(r.server_version == "2.51.0" for r in hist.runs)
    assert hist.points and all(r.figures for r in hist.runs)
    data = hist.to_json()
    assert set(data["runs"][0]) >= {"run_id", "started_at", "verdict"}


def test_history_table_fits_80_columns_and_marks_gaps() -> None:
    runs = [HistoryRun("nightly-a100-0001", "ok", "2026-12-01T02:00:00+00:00", 1,
                       figures={"paced grpc, concurrency 2": {"p99": 41.23, "throughput": 49.7}},
                       checks={"health": "pass", "load": "pass"}, server_version="2.51.0"),
            HistoryRun("nightly-a100-0002", "missing", None, 2, "2026-12-01T02:30:00+00:00",
                       reasons=["due, and never started"]),
            HistoryRun("nightly-a100-0003", "regressed", "2026-12-01T03:00:00+00:00", 3,
                       figures={"paced grpc, concurrency 2": {"p99": 161.0, "throughput": 12.4}},
                       checks={"health": "pass", "load": "pass"}, server_version="2.52.0",
                       reasons=["paced grpc p99: 41 -> 161 ms"])]
    hist = History("schedule nightly-a100", runs, baseline="nightly-a100")
    for wide in (False, True):
        console = Console(width=80, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
        from hpctriton.report.fit import fitted

        console.print(fitted(history_table(hist, wide=wide), console))
        text = console.export_text()
        assert all(len(line) <= 80 for line in text.splitlines()), text
        assert "…" not in text
        assert "missing" in text and "161" in text
    assert hist.version_changes() == [(2, "2.51.0", "2.52.0")]


def test_history_html_draws_trends_with_gaps(tmp_path: Path) -> None:
    from hpctriton.report.history_html import history_html

    runs = [HistoryRun(f"s-000{i}", v, f"2026-12-01T0{i}:00:00+00:00" if v != "missing"
                       else None, i, f"2026-12-01T0{i}:00:00+00:00",
                       figures={} if v == "missing" else {"simple http, concurrency 1": {
                           "p50": 1.0 + i, "p99": 2.0 + i, "throughput": 100.0 - i}},
                       checks={} if v == "missing" else {"health": "pass"},
                       capacity_rps=None if v == "missing" else 90.0 + i)
            for i, v in enumerate(["ok", "ok", "missing", "regressed"], start=1)]
    page = history_html(History("schedule s", runs))
    assert "data:image/png;base64," in page
    assert "Verdict of each check over time" in page and "s-0003" in page


# --------------------------------------------------------------------- notify


def event() -> Event:
    return Event("failed", "s-0002", "s", "c", "h", "2026-12-01T02:00:00+00:00", None,
                 ["health[http]: fail: connection refused"], "/x/s-0002")


def test_notify_command_gets_json_on_stdin_and_variables(tmp_path: Path) -> None:
    out = tmp_path / "got"
    command = (f"cat > {shlex.quote(str(out))}.json; env | grep ^HPCTRITON_ | sort "
               f"> {shlex.quote(str(out))}.env")
    assert send(NotifyConfig(command=command), event()) == []
    got = json.loads(Path(f"{out}.json").read_text())
    assert got["event"] == "failed" and got["run_id"] == "s-0002" and got["cluster"] == "c"
    env = Path(f"{out}.env").read_text()
    assert "HPCTRITON_EVENT=failed" in env and "HPCTRITON_RUN_ID=s-0002" in env
    assert "HPCTRITON_CLUSTER=c" in env and "HPCTRITON_REASON=health[http]" in env
    # an event not asked for is not sent; a failing command is reported, not raised
    assert send(NotifyConfig(command="exit 9", on=["missing"]), event()) == []
    problems = send(NotifyConfig(command="echo nope >&2; exit 9"), event())
    assert problems and "exited 9" in problems[0] and "nope" in problems[0]


def test_notify_url_refused_is_a_problem_not_an_error() -> None:
    from hpctriton.testing import free_port

    problems = send(NotifyConfig(url=f"http://127.0.0.1:{free_port()}/x", timeout_s=3),
                    event())
    assert problems and "notify url" in problems[0]


def test_notify_config_needs_something_to_do() -> None:
    from hpctriton.errors import ConfigError

    base = {"server": {"host": "h", "http_port": 1}, "models": ["m"]}
    with pytest.raises(ConfigError, match="notify"):
        config_from_data({**base, "notify": {}})
    with pytest.raises(ConfigError, match="https://"):
        config_from_data({**base, "notify": {"url": "ftp://x"}})


# --------------------------------------------------------------- doctor: scrontab


def _path_without_scrontab() -> str:
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and not os.path.exists(os.path.join(p, "scrontab")))


@pytest.mark.parametrize("present", [False, True])
def test_doctor_tells_whether_the_site_has_scrontab(tmp_path: Path, monkeypatch,
                                                    present: bool) -> None:
    from hpctriton.tools.doctor import run_doctor

    path = _path_without_scrontab()
    if present:
        standin = tmp_path / "bin" / "scrontab"
        standin.parent.mkdir()
        standin.write_text("#!/bin/sh\necho 'scrontab stand-in'\n")
        standin.chmod(standin.stat().st_mode | stat.S_IEXEC)
        path = f"{standin.parent}{os.pathsep}{path}"
    monkeypatch.setenv("PATH", path)
    assert (shutil.which("scrontab") is not None) == present
    config = config_from_data({"server": {"host": "127.0.0.1", "http_port": 1},
                               "models": ["m"], "container": {"runtime": "none"},
                               "clusters": {"here": {"backend": "slurm",
                                                     "workdir": str(tmp_path / "w")}}})
    checks = {c.name: c for c in run_doctor(config, "here")}
    found = checks["scrontab"]
    assert found.ok  # information: hpctriton schedule needs none
    if present:
        assert found.detail.startswith(f"found: {tmp_path / 'bin' / 'scrontab'}")
        assert "job chain" in found.detail
    else:
        assert found.detail.startswith("none on PATH")
        assert "Debian's Slurm 22.05 packages ship none" in found.detail


# ------------------------------------------------------------------ CLI basics


@pytest.mark.parametrize("args", [["schedule", "--help"], ["schedule", "stop", "--help"],
                                  ["schedule", "list", "--help"], ["history", "--help"],
                                  ["baseline", "set", "--help"], ["collect", "--help"]])
def test_monitoring_commands_have_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "Usage:" in result.output


def test_no_schedules_and_no_baselines_yet() -> None:
    result = CliRunner().invoke(cli, ["schedule", "list"])
    assert result.exit_code == 0 and "no schedules yet" in result.output
    result = CliRunner().invoke(cli, ["history"])
    assert result.exit_code == 2 and "no schedules yet" in result.output
    result = CliRunner().invoke(cli, ["compare", "--baseline", "nope",
                                      str(DATA / "report_run_a")])
    assert result.exit_code == 2 and "no baseline 'nope'" in result.output


def test_schedule_needs_every(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schedule", "-c", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2 and "--every" in result.output

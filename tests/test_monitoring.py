"""Monitoring end to end (issue 17): a schedule's job chain on the real one-node Slurm
over the real sshd, ``collect --all`` in one stream, ``history``, ``schedule stop``,
``notify`` (a command and a local HTTP listener), and the regression gate against a
real slower Triton server."""

from __future__ import annotations

import json
import shlex
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from e2e import make_config

from hpctriton.api import submit
from hpctriton.cli import cli
from hpctriton.runs import schedules
from hpctriton.testing import DEMO_MODELS, free_port, start_triton

pytestmark = pytest.mark.service

EVERY = "10s"


def wait_members(sched: schedules.Schedule, done: Any, timeout_s: float = 150
                 ) -> schedules.Members:
    """Read the chain's record every 2 s until ``done(members)``."""
    deadline = time.monotonic() + timeout_s
    with sched.transport() as transport:
        while True:
            members = schedules.read_members(sched, transport)
            if done(members):
                return members
            if time.monotonic() > deadline:
                pytest.fail(f"chain {sched.name}: not there in {timeout_s} s: "
                            f"{[m.to_json() for m in members.links]}")
            time.sleep(2)


def ended(n: int) -> Any:
    return lambda m: sum(x.ended_at is not None for x in m.links) >= n


class Listener:
    """A local HTTP server that keeps every POSTed body."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.bodies = bodies
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_chain_runs_three_times_collects_in_one_stream_and_stops(
        tmp_path, sshd, slurm, triton, monkeypatch) -> None:
    good = make_config(tmp_path / "good", triton, sshd, checks=["health", "metadata"])
    # a chain whose checks all fail (nothing listens there): it must go on regardless
    hook_file = tmp_path / "hook.json"
    listener = Listener()
    bad_data = make_config(tmp_path / "bad", triton, sshd, checks=["health"],
                           server={"http_port": free_port(), "grpc_port": free_port()}
                           ).to_data()
    bad_data["notify"] = {"command": f"cat > {shlex.quote(str(hook_file))}; "
                                     f"echo \"$HPCTRITON_EVENT $HPCTRITON_RUN_ID "
                                     f"$HPCTRITON_CLUSTER\" > {shlex.quote(str(hook_file))}.env",
                          "url": listener.url}
    from hpctriton.config import config_from_data

    bad = config_from_data(bad_data, base_dir=tmp_path / "bad")
    try:
        sched = schedules.start_schedule(good, "test", every=EVERY, name="good")
        failing = schedules.start_schedule(bad, "test", every=EVERY, count=2, name="bad")
        assert sched.first_job and failing.first_job
        assert (sched.path / "schedule.json").is_file()

        # three links of the good chain end; each submitted the next before its checks
        members = wait_members(sched, ended(3))
        print("chain:", [(m.run_id, m.due_at, m.started_at, m.ended_at) for m in members.links])
        ran = [m for m in members.links if m.ended_at is not None]
        assert [m.run_id for m in ran[:3]] == ["good-0001", "good-0002", "good-0003"]
        assert all(m.exit_code == 0 for m in ran[:3])
        for first, second in zip(ran, ran[1:], strict=False):
            assert second.due_at is not None and first.started_at is not None
            # the next link was submitted before this one's checks ended
            assert second.due_at - int(EVERY[:-1]) <= (first.ended_at or 0)
            assert second.started_at is not None and second.started_at >= second.due_at - 1

        # the failing chain: both links ran and failed their checks, and it ended by count
        bad_members = wait_members(failing, lambda m: m.ended and ended(2)(m))
        assert [m.exit_code for m in bad_members.links if m.ended_at] == [1, 1]
        assert sum(1 for m in bad_members.links if m.started_at) == 2

        # stop: the next link finds STOP, runs nothing and submits nothing
        result = invoke("schedule", "stop", "good")
        assert result.exit_code == 0, result.output
        stopped = wait_members(sched, lambda m: any(x.stopped for x in m.links), 60)
        last = stopped.links[-1]
        assert last.stopped and stopped.ended
        queue = slurm.run("squeue", "-h", "-n", "hpct-good", "-o", "%i")
        assert queue.strip() == "", queue

        # collect --all: every ended link, in one tar stream over one connection
        from hpctriton.transport.base import Transport

        streams: list[str] = []
        original = Transport.fetch_tar_script

        def counted(self: Any, script: str, *args: Any, **kw: Any) -> Any:
            streams.append(script)
            return original(self, script, *args, **kw)

        monkeypatch.setattr(Transport, "fetch_tar_script", counted)
        from hpctriton.transport.ssh import SSHTransport

        connections: list[object] = []
        opened = SSHTransport.__init__

        def counted_init(self: Any, *args: Any, **kw: Any) -> None:
            connections.append(self)
            opened(self, *args, **kw)

        monkeypatch.setattr(SSHTransport, "__init__", counted_init)
        result = invoke("collect", "--all", "good", "--json")
        assert result.exit_code == 0, result.output
        done = json.loads(result.output)
        fetched = done["fetched"]
        assert len(streams) == 1 and len(connections) == 1
        assert len(fetched) >= 3 and {"good-0001", "good-0002", "good-0003"} <= set(fetched)
        for run_id in fetched:
            folder = sched.runs_dir / run_id
            assert (folder / "results" / "0" / "results.json").is_file()
            assert (folder / "results" / "0" / "MANIFEST.sha256").is_file()
        again = invoke("collect", "--all", "good", "--json")
        assert json.loads(again.output)["fetched"] == []  # idempotent

        # history shows the three (or more) runs, oldest first, all ok
        result = invoke("history", "good", "--json")
        assert result.exit_code == 0, result.output
        runs = json.loads(result.output)["runs"]
        assert [r["run_id"] for r in runs][:3] == ["good-0001", "good-0002", "good-0003"]
        assert {r["verdict"] for r in runs} == {"ok"}
        starts = [r["started_at"] for r in runs]
        assert starts == sorted(starts) and all(starts)
        assert all(r["server_version"] for r in runs)
        table = invoke("history", "good")
        assert table.exit_code == 0 and "good-0003" in table.output
        html = tmp_path / "history.html"
        assert invoke("history", "good", "--html", str(html)).exit_code == 0
        assert "Verdict of each check over time" in html.read_text()

        # the failing chain: collected, failed, and notify heard both runs
        result = invoke("collect", "--all", "bad", "--json")
        done = json.loads(result.output)
        assert sorted(done["fetched"]) == ["bad-0001", "bad-0002"]
        assert [r["verdict"] for r in done["history"]["runs"]] == ["failed", "failed"]
        assert [e["run_id"] for e in done["notified"]] == ["bad-0001", "bad-0002"]
        heard = json.loads(hook_file.read_text())  # the last one, from stdin
        assert heard["event"] == "failed" and heard["run_id"] == "bad-0002"
        assert heard["cluster"] == "test" and heard["schedule"] == "bad"
        assert any("health" in r for r in heard["reasons"])
        assert Path(f"{hook_file}.env").read_text().split() == ["failed", "bad-0002", "test"]
        assert [b["run_id"] for b in listener.bodies] == ["bad-0001", "bad-0002"]
        assert invoke("collect", "--all", "bad").exit_code == 0
        assert len(listener.bodies) == 2  # notified once per run and event

        listing = invoke("schedule", "list", "--json")
        rows = {r["name"]: r for r in json.loads(listing.output)["schedules"]}
        assert rows["good"]["state"] == "stopped" and rows["good"]["last_verdict"] == "ok"
        assert rows["bad"]["state"] == "ended" and rows["bad"]["last_verdict"] == "failed"
        assert rows["bad"]["next_due"] is None
    finally:
        listener.close()
        slurm.run("scancel", "-n", "hpct-good", check=False)
        slurm.run("scancel", "-n", "hpct-bad", check=False)


def test_schedule_refuses_local_and_dicos_and_dry_run_shows_the_chain(tmp_path, triton,
                                                                      sshd) -> None:
    config = make_config(tmp_path, triton, sshd)
    path = tmp_path / "hpctriton.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config.to_data()))
    dry = invoke("schedule", "-c", str(path), "--cluster", "test", "--every", "30m",
                 "--count", "4", "--name", "nightly", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.output)
    assert plan["interval_s"] == 1800 and plan["count"] == 4 and plan["first_run"] == \
        "nightly-0001"
    assert "sbatch --parsable --begin=now+1800" in plan["chain_script"]
    assert not (tmp_path / "runs").exists()  # nothing written
    for backend in ("local", "dicos"):
        result = CliRunner().invoke(cli, ["schedule", "-c", str(path), "--backend", backend,
                                          "--every", "1h"])
        assert result.exit_code == 2, result.output
        assert "What works: a Slurm cluster" in result.output


def slow_paced_repo(folder: Path, delay_s: float) -> Path:
    """A model repository with ``paced`` answering after ``delay_s`` (a slower server)."""
    repo = folder / "models"
    shutil.copytree(Path(DEMO_MODELS) / "paced", repo / "paced")
    conf = repo / "paced" / "config.pbtxt"
    conf.write_text(conf.read_text().replace('string_value: "0.02"',
                                             f'string_value: "{delay_s}"'))
    return repo


def test_regression_gate_against_a_slower_server(tmp_path, triton) -> None:
    load = {"protocol": "http", "concurrency": [2], "warmup_s": 0.3, "window_s": 1.0,
            "stability": {"windows": 3, "percent": 50, "max_trials": 3}}

    def run_on(server: Any, name: str) -> str:
        config = make_config(tmp_path / name, server, None, backend="local",
                             container={"runtime": "none"}, models=["paced"],
                             checks=["health", {"load": load}])
        run = submit(config, "test", wait=True)
        with run:
            assert run.results().ok
            return str(run.path)

    fast = run_on(triton, "fast")
    same = run_on(triton, "same")
    slow_server = start_triton(str(slow_paced_repo(tmp_path, 0.08)), models=["paced"])
    try:
        slow = run_on(slow_server, "slow")
    finally:
        slow_server.stop()
    assert invoke("baseline", "set", fast, "--name", "fast").exit_code == 0
    listed = json.loads(invoke("baseline", "list", "--json").output)["baselines"]
    assert [b["name"] for b in listed] == ["fast"]

    result = CliRunner().invoke(cli, ["compare", "--baseline", "fast", slow,
                                      "--fail-on-regression"])
    print(result.output)  # the figures and rules, for the record (-s)
    assert result.exit_code == 1, result.output
    assert "REGRESSED" in result.output
    assert "rule: 99% CI of p99" in result.output  # the rule beside the verdict
    assert "binomial order statistics" in result.output

    result = CliRunner().invoke(cli, ["compare", "--baseline", "fast", same,
                                      "--fail-on-regression", "--json"])
    assert result.exit_code == 0, result.output
    gate = json.loads(result.output)["gates"][0]
    assert not gate["regressed"]
    judged = {j["metric"]: j for j in gate["judgements"] if j["section"] == "load"}
    assert judged["p99"]["verdict"] in ("same", "improved")

    # a tolerance the user sets replaces the rule: 1000 % lets even the slow run pass
    result = CliRunner().invoke(cli, ["compare", "--baseline", "fast", slow,
                                      "--fail-on-regression", "--tolerance", "p50=1000%",
                                      "--tolerance", "p90_ms=1000%", "--tolerance",
                                      "p95=1000%", "--tolerance", "p99_ms=1000%",
                                      "--tolerance", "throughput=1000%"])
    assert result.exit_code == 0, result.output
    assert "tolerance 1000% (set by you)" in CliRunner().invoke(
        cli, ["compare", "--baseline", "fast", slow, "--tolerance", "p99=1000%",
              "--wide"]).output

    # history of the config's runs judges each against the baseline too
    runs_dir = tmp_path / "all-runs"
    runs_dir.mkdir()
    for folder in (fast, same, slow):
        shutil.copytree(folder, runs_dir / Path(folder).name)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"runs_dir: {runs_dir}\n")
    result = invoke("history", "-c", str(cfg), "--baseline", "fast", "--json")
    verdicts = [r["verdict"] for r in json.loads(result.output)["runs"]]
    assert verdicts == ["ok", "ok", "regressed"], result.output

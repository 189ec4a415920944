"""End to end on real services: OpenSSH on loopback, a one-node Slurm cluster with
accounting (slurmdbd + MariaDB), a real Triton server, the real probe inside the jobs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from e2e import make_config

from hpctriton.api import Run, open_run, submit
from hpctriton.errors import CollectError, HostKeyError, TransportError
from hpctriton.runs.collect import verify_task_dir
from hpctriton.schedulers import JobState

pytestmark = pytest.mark.service

#: Waiting in tests: the remote loop still watches state files continuously; the scheduler
#: hint interval is shortened so cancel/timeout are learnt quickly.
FAST = {"hint_interval_s": 2.0, "hint_interval_max_s": 4.0}


def run_to_end(run: Run, timeout_s: float = 180) -> None:
    status = run.wait(timeout_s=timeout_s, collect=False, **FAST)  # collect is under test
    assert status.done, f"run did not end in {timeout_s} s: {status.counts()}"


def scheduler_calls(run: Run) -> int:
    return run.transport.count("sacct", "squeue")


def test_submit_probe_wait_collect_every_check_passes(tmp_path, sshd, slurm, triton,
                                                       standin) -> None:
    config = make_config(tmp_path, triton, sshd, container={
        "runtime": "singularity", "image": str(tmp_path / "tritonclient.sif"),
        "python": __import__("sys").executable, "instance": True})
    run = submit(config, "test")
    with run:
        run_to_end(run)
        report = run.collect()
        assert report.fetched == [0]
        results = run.results()
        assert results.ok, [(c.check, c.protocol, c.model, c.status, c.message)
                            for c in results.checks if not c.ok]
        names = {c.check for c in results.checks}
        assert {"health", "metadata", "keepalive", "infer", "statistics", "metrics"} <= names
        task_dir = run.path / "results" / "0"
        assert verify_task_dir(task_dir) == []
        assert {"results.json", "junit.xml", "probe.log", "state.json"} <= {
            p.name for p in task_dir.iterdir()}
        state = json.loads((task_dir / "state.json").read_text())
        assert state["job_id"] == run.record.jobs[0].job_id
        run_info = json.loads((task_dir / "results.json").read_text())["run"]
        assert run_info["job_id"] == run.record.jobs[0].job_id
        assert (run.path / "results" / f"slurm-{run.record.jobs[0].job_id}.out").is_file()
        calls = [c["args"][:2] for c in standin.calls("singularity")]
        assert ["instance", "start"] in calls and ["instance", "stop"] in calls
    reopened = open_run(run.run_id, runs_dir=tmp_path / "runs")
    assert reopened.status().overall == JobState.SUCCEEDED


def test_sweep_of_20_tasks_is_chunked_waited_and_collected(tmp_path, sshd, slurm,
                                                           triton) -> None:
    small = make_config(tmp_path / "small", triton, sshd, checks=["health"],
                        sweep={"probe.timeout_s": [4, 5]})
    big = make_config(tmp_path / "big", triton, sshd, checks=["health"],
                      sweep={"probe.timeout_s": list(range(3, 23))})
    calls = {}
    for name, config in (("small", small), ("big", big)):
        run = submit(config, "test")
        with run:
            assert run.wait(timeout_s=180, collect=False).done  # the default hint interval (30 s)
            calls[name] = scheduler_calls(run)
            if name == "big":
                # MaxArraySize is 16 on the test cluster: two arrays, never 20 sbatch calls
                assert [len(j.tasks) for j in run.record.jobs] == [16, 4]
                assert run.transport.count("sbatch --parsable") == 1  # one remote script
                report = run.collect()
                assert sorted(report.fetched) == list(range(20))
                assert run.results().ok and len(run.results().tasks) == 20
    # one scheduler call covers every task: as many calls for 20 tasks as for 2
    assert calls["big"] == calls["small"] <= 2, calls


def test_server_down_fails_by_checks_and_results_are_collected(tmp_path, sshd, slurm,
                                                               triton) -> None:
    from hpctriton.testing import free_port

    config = make_config(tmp_path, triton, sshd, checks=["health"],
                         server={"http_port": free_port(), "grpc_port": free_port()})
    run = submit(config, "test")
    with run:
        run_to_end(run)
        status = run.status()
        assert status.tasks[0].state == JobState.FAILED
        assert status.tasks[0].reason == "checks failed"
        run.collect()
        results = run.results()
        assert not results.ok
        assert {c.status for c in results.checks} == {"fail"}


def test_cancel(tmp_path, sshd, slurm, triton) -> None:
    config = make_config(tmp_path, triton, sshd,
                         checks=[{"keepalive": {"calls": 3, "period_s": 60}}])
    run = submit(config, "test")
    with run:
        run.wait(timeout_s=0.5, **FAST)
        run.cancel()
        run_to_end(run, 60)
        assert run.status().tasks[0].state == JobState.CANCELLED


def test_job_past_its_time_limit_times_out_with_partial_results(tmp_path, sshd, slurm,
                                                                 triton) -> None:
    config = make_config(tmp_path, triton, sshd,
                         checks=["health", {"keepalive": {"calls": 2, "period_s": 240}}],
                         cluster={"slurm": {"time": "1"}})
    run = submit(config, "test")
    with run:
        run_to_end(run, 150)
        status = run.status()
        assert status.tasks[0].state == JobState.TIMEOUT, status.tasks[0]
        run.collect()
        data = json.loads((run.path / "results/0/results.json").read_text())
        assert data["run"]["interrupted"] is True
        assert any(c["check"] == "health" and c["status"] == "pass" for c in data["checks"])


def test_collect_rejects_corruption_resumes_and_is_idempotent(tmp_path, sshd, slurm,
                                                              triton, monkeypatch) -> None:
    config = make_config(tmp_path, triton, sshd, checks=["health"],
                         sweep={"probe.timeout_s": [3, 4, 5]})
    run = submit(config, "test")
    with run:
        run_to_end(run)
        remote = Path(run.record.remote_dir)  # the "cluster" is this machine
        target = remote / "results/1/results.json"
        original = target.read_bytes()
        target.write_bytes(original.replace(b'"pass"', b'"PASS"'))
        with pytest.raises(CollectError, match="task 1"):
            run.collect()
        assert not (run.path / "results/1").exists()  # not accepted
        assert (run.path / "results/0").exists()  # the good ones were
        target.write_bytes(original)
        shutil.rmtree(run.path / "results")

        # an interrupted collect: the stream breaks after the first task's files
        import hpctriton.runs.collect as collect_module

        real_accept = collect_module._accept
        accepted: list[int] = []

        def accept_once(*args):  # type: ignore[no-untyped-def]
            if accepted:
                raise KeyboardInterrupt
            accepted.append(args[1])  # _accept(scratch, task, ...)
            real_accept(*args)

        monkeypatch.setattr(collect_module, "_accept", accept_once)
        with pytest.raises(KeyboardInterrupt):
            run.collect()
        monkeypatch.undo()
        report = run.collect()
        assert sorted(report.fetched) == sorted({0, 1, 2} - set(accepted))
        assert sorted(report.already) == sorted(accepted)

        stamps = {p: p.stat().st_mtime_ns for p in (run.path / "results").rglob("*")}
        again = run.collect()
        assert again.fetched == [] and sorted(again.already) == [0, 1, 2]
        assert {p: p.stat().st_mtime_ns for p in (run.path / "results").rglob("*")} == stamps


def test_status_without_accounting_falls_back_to_squeue(tmp_path, sshd, slurm, triton,
                                                         slurm_no_accounting_env) -> None:
    config = make_config(tmp_path, triton, sshd, checks=["health"],
                         cluster={"remote_env": dict(slurm_no_accounting_env.env)})
    run = submit(config, "test")
    with run:
        hint = run.scheduler.poll(run.transport, run.record, [0])
        assert 0 in hint  # squeue knows the job
        assert run.transport.history[-1].script.count("squeue") == 1
        run_to_end(run)
        assert run.status().tasks[0].state == JobState.SUCCEEDED


def test_status_uses_sacct_where_accounting_answers(tmp_path, sshd, slurm, triton) -> None:
    config = make_config(tmp_path, triton, sshd, checks=["health"])
    run = submit(config, "test")
    with run:
        run_to_end(run)
        # finished jobs: the state file answers; sacct knows the job too
        hint = run.scheduler.poll(run.transport, run.record, [0])
        assert hint[0].state == JobState.SUCCEEDED and hint[0].raw == "COMPLETED"


def test_hostile_job_name_reaches_slurm_intact(tmp_path, sshd, slurm, triton) -> None:
    name = "a b'c\"$(touch CANARY)`x`;#y\\z"
    config = make_config(tmp_path, triton, sshd, checks=["health"],
                         cluster={"slurm": {"job_name": name}})
    run = submit(config, "test")
    with run:
        job_id = run.record.jobs[0].job_id
        out = subprocess.run(["scontrol", "show", "job", "-o", job_id], capture_output=True,
                             text=True, env={**__import__("os").environ, **slurm.env})
        assert f"JobName={name} " in out.stdout or out.stdout.rstrip().endswith(
            f"JobName={name}"), out.stdout
        run_to_end(run)
    assert not list(tmp_path.rglob("CANARY"))


def test_wrong_host_key_refused_before_anything_is_staged(tmp_path, sshd, triton) -> None:
    import paramiko

    bogus = paramiko.Ed25519Key.from_private_key_file(str(sshd.client_key))
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {bogus.get_name()} {bogus.get_base64()}\n")
    config = make_config(tmp_path, triton, sshd, cluster={"known_hosts": str(known)})
    with pytest.raises(HostKeyError):
        submit(config, "test")
    assert not (tmp_path / "remote").exists()


def test_bad_key_is_refused_with_a_clear_message(tmp_path, sshd, triton) -> None:
    config = make_config(tmp_path, triton, sshd, cluster={"key": str(tmp_path / "missing")})
    with pytest.raises(TransportError, match="key file not found"):
        submit(config, "test")


def test_plain_sbatch_of_a_rendered_bundle(tmp_path, slurm, triton) -> None:
    """The promise of the render command: `cd bundle && sbatch job.sh` just works."""
    from hpctriton.render.bundle import render_bundle

    config = make_config(tmp_path, triton, None, checks=["health", "infer"])
    bundle = render_bundle(config, tmp_path / "bundle", cluster="test")
    os_env = __import__("os").environ
    stand_ins = Path(__file__).resolve().parent / "stand-ins"
    env = {**os_env, **slurm.env, "PATH": f"{stand_ins}:{os_env['PATH']}"}
    submitted = subprocess.run(["sbatch", "--parsable", "--wait", "job.sh"], cwd=bundle.path,
                               capture_output=True, text=True, env=env, timeout=120)
    assert submitted.returncode == 0, submitted.stderr
    state = json.loads((bundle.path / "results/0/state.json").read_text())
    assert state["exit_code"] == 0 and state["phase"] == "finished"
    assert verify_task_dir(bundle.path / "results/0") == []
    out = (bundle.path / f"results/slurm-{submitted.stdout.strip()}.out").read_text()
    assert "hpctriton: task 0 finished with exit code 0" in out


def test_doctor_checks_the_cluster(tmp_path, sshd, slurm, triton) -> None:
    from hpctriton.tools.doctor import run_doctor

    config = make_config(tmp_path, triton, sshd, cluster={"slurm": {"partition": "debug"}})
    checks = {c.name: c for c in run_doctor(config, "test")}
    failed = [c for c in checks.values() if not c.ok]
    assert not failed, failed
    assert "partition debug" in checks and "accounting (sacct)" in checks
    # Debian's Slurm 22.05 has no scrontab: said, as information, never a failure
    assert "job chain" in checks["scrontab"].detail
    assert any(name.startswith("server 127.0.0.1") for name in checks)


def test_cli_submit_wait_status_collect(tmp_path, sshd, slurm, triton) -> None:
    import yaml

    config = make_config(tmp_path, triton, sshd, checks=["health", "infer"])
    path = tmp_path / "hpctriton.yaml"
    path.write_text(yaml.safe_dump(config.to_data()))
    cli = [__import__("sys").executable, "-m", "hpctriton"]

    def hpct(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], capture_output=True, text=True, cwd=tmp_path,
                              timeout=300)

    done = hpct("submit", "-c", str(path), "--wait", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["overall"] == "succeeded" and data["results"]["ok"]
    status = hpct("status", "-c", str(path), "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["overall"] == "succeeded"
    again = hpct("collect", "-c", str(path), "--json")
    assert json.loads(again.stdout)["fetched"] == []
    listed = json.loads(hpct("runs", "-c", str(path), "--json").stdout)
    assert listed[0]["run_id"] == data["run_id"]
    bad = hpct("status", "no-such-run", "-c", str(path))
    assert bad.returncode == 2 and "no run 'no-such-run'" in bad.stderr

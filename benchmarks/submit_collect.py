"""Submit and collect a 200-task sweep through SSH to a real Slurm, against the naive way.

hpctriton: one remote script submits the whole sweep as job arrays (chunked to
MaxArraySize), and one tar stream brings every result back. The naive way: one
``sbatch`` per task, each its own SSH command, and file-by-file SFTP gets. Only the
submit and collect phases are timed (the jobs' own run time is the same for both).

Also measured: the time from a task's ``state.json`` appearing to the waiting client
knowing it (hpctriton's remote wait loop).

Needs root (it starts sshd, munge, MariaDB, slurmdbd, slurmctld, slurmd like the tests
do) and the nvidia-pytriton wheel. Run: ``.venv/bin/python benchmarks/submit_collect.py``.
"""

from __future__ import annotations

import json
import os
import shlex
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from e2e import make_config  # noqa: E402
from services.common import make_workdir  # noqa: E402
from services.slurm import slurm_conf_path, start_slurm  # noqa: E402
from services.sshd import start_sshd  # noqa: E402

from hpctriton.api import Run, submit  # noqa: E402
from hpctriton.testing import start_triton  # noqa: E402
from hpctriton.transport import open_transport  # noqa: E402

TASKS = 200


def wait_all(run: Run) -> None:
    status = run.wait(timeout_s=900, collect=False)  # collect is timed on its own
    assert status.done and status.counts() == {"succeeded": TASKS}, status.counts()


def hpctriton_way(config) -> tuple[float, float, Run]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    run = submit(config, "test")
    assert isinstance(run, Run)
    submit_s = time.perf_counter() - t0
    wait_all(run)
    t0 = time.perf_counter()
    report = run.collect()
    collect_s = time.perf_counter() - t0
    assert len(report.fetched) == TASKS
    return submit_s, collect_s, run


def naive_way(config, bundle_remote: str, out: Path) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """One sbatch per task over one SSH command each; SFTP get of every file."""
    transport = open_transport(config.clusters["test"])
    with transport:
        t0 = time.perf_counter()
        for task in range(TASKS):
            transport.run_script(f"cd {shlex.quote(bundle_remote)} && "
                                 f"sbatch --parsable job.sh --task {task}").check("sbatch")
        submit_s = time.perf_counter() - t0
        deadline = time.time() + 900
        while time.time() < deadline:  # wait (not timed): every state file finished
            done = transport.run_script(
                f"grep -l finished {shlex.quote(bundle_remote)}/results/*/state.json "
                "2>/dev/null | wc -l").stdout.strip()
            if int(done or 0) >= TASKS:
                break
            time.sleep(2)
        t0 = time.perf_counter()
        sftp = transport.client().open_sftp()  # type: ignore[attr-defined]
        for task in range(TASKS):
            remote = f"{bundle_remote}/results/{task}"
            local = out / str(task)
            local.mkdir(parents=True, exist_ok=True)
            for name in sftp.listdir(remote):
                sftp.get(f"{remote}/{name}", str(local / name))
        sftp.close()
        collect_s = time.perf_counter() - t0
    return submit_s, collect_s


def notice_latency(run: Run, samples: int = 10) -> list[float]:
    """Write state.json files by hand and time how long the waiting client needs."""
    from hpctriton.runs import watch

    remote = Path(run.record.remote_dir) / "results"
    latencies: list[float] = []
    for i in range(samples):
        task = 1000 + i
        seen = threading.Event()
        record = run.record
        record.n_tasks = task + 1  # a pretend extra task, watched by the real loop
        waiter = watch.Waiter(run.transport, run.scheduler, record, hint_interval_s=3600)

        def on_change(status: watch.RunStatus, task: int = task,
                      seen: threading.Event = seen) -> None:
            if status.tasks[task].state.final:
                seen.set()

        waiter.on_change = on_change
        thread = threading.Thread(target=waiter.wait, kwargs={"timeout_s": 30}, daemon=True)
        thread.start()
        time.sleep(1.0)  # the loop is running
        (remote / str(task)).mkdir(parents=True, exist_ok=True)
        written = time.perf_counter()
        tmp = remote / str(task) / ".state.tmp"
        tmp.write_text(json.dumps({"schema_version": 1, "phase": "finished", "task": task,
                                   "exit_code": 0, "interrupted": False}) + "\n")
        tmp.rename(remote / str(task) / "state.json")
        seen.wait(10)
        latencies.append(time.perf_counter() - written)
        thread.join(35)
    run.record.n_tasks = TASKS
    return latencies


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="hpct-bench-"))
    os.environ["XDG_STATE_HOME"] = str(tmp / "state")  # its runs stay out of your run index
    workdir = make_workdir("slurm")
    slurm = start_slurm(workdir=workdir)
    sshd = start_sshd(path_prepend=[ROOT / "tests" / "stand-ins", Path(sys.executable).parent],
                      env={"SLURM_CONF": str(slurm_conf_path(workdir))})
    triton = start_triton(models=["simple"])
    try:
        config = make_config(tmp / "a", triton, sshd, checks=["health"],
                             sweep={"probe.timeout_s": [5 + i / 1000 for i in range(TASKS)]})
        ours_submit, ours_collect, run = hpctriton_way(config)
        with run:
            latency = notice_latency(run)
            naive = make_config(tmp / "b", triton, sshd, checks=["health"],
                                sweep={"probe.timeout_s": [5 + i / 1000 for i in range(TASKS)]})
            from hpctriton.render.bundle import render_bundle

            bundle = render_bundle(naive, tmp / "b" / "remote" / "naive", cluster="test")
            script = bundle.path / "job.sh"  # a hand-written script has no array directive
            script.write_text("".join(line for line in script.read_text().splitlines(True)
                                      if not line.startswith("#SBATCH --array")))
            naive_submit, naive_collect = naive_way(naive, str(bundle.path), tmp / "naive-out")
        print(f"{TASKS}-task sweep through SSH to Slurm "
              f"(MaxArraySize {slurm.max_array_size}: {len(run.record.jobs)} arrays)")
        print(f"  submit : hpctriton {ours_submit:6.2f} s   naive {naive_submit:6.2f} s   "
              f"ratio {naive_submit / ours_submit:5.1f}x")
        print(f"  collect: hpctriton {ours_collect:6.2f} s   naive {naive_collect:6.2f} s   "
              f"ratio {naive_collect / ours_collect:5.1f}x")
        both_ours, both_naive = ours_submit + ours_collect, naive_submit + naive_collect
        print(f"  both   : hpctriton {both_ours:6.2f} s   naive {both_naive:6.2f} s   "
              f"ratio {both_naive / both_ours:5.1f}x")
        print(f"  state.json appearing -> client knowing: median "
              f"{statistics.median(latency) * 1000:.0f} ms, max {max(latency) * 1000:.0f} ms "
              f"({len(latency)} samples)")
    finally:
        triton.stop()
        sshd.stop()
        slurm.stop()


if __name__ == "__main__":
    main()

"""Tests of the DiCOS emulator (tests/stand-ins/dicos) alone: run locally, no SSH.

The emulator stands in for ASGC's non-public ``dicos`` command in hpctriton's end-to-end
tests, so these tests pin it to the documented contract (shared/notes/dicos-cli.md): the
exact submission, status-table and getoutput lines, ``[ERROR]`` lines on stdout with exit
1, jobs that really run in the background and move activated -> running -> finished.
Every test gets a fresh state folder; the ``dicos`` fixture stops every job and runner the
test left behind and checks that none survives.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

EMULATOR = Path(__file__).resolve().parent / "stand-ins" / "dicos"
SUBMITTED = re.compile(r"^Job (\d+) is submitted\. \(TaskID: (\d+)\)$")
HEADER = " TaskID    PandaID  Name                      Status"
DASHES = "-" * 53  # as documented: one longer than the header


def _alive(pid: int | None) -> bool:
    """A process (not a zombie) with this pid exists."""
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Dicos:
    """Runs the emulator with one state folder; helpers to read its table."""

    def __init__(self, state: Path, workdir: Path) -> None:
        self.state = state
        self.workdir = workdir
        # PATH as in the test sshd's sessions: stand-ins, then this venv's bin (its python3)
        path = os.pathsep.join([str(EMULATOR.parent), os.path.dirname(sys.executable)])
        self.env = {
            **os.environ,
            "PATH": path + os.pathsep + os.environ.get("PATH", ""),
            "DICOS_EMULATOR_STATE": str(state),
        }

    def __call__(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(EMULATOR), *args],
            cwd=cwd or self.workdir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
        )

    def ok(self, *args: str, cwd: Path | None = None) -> list[str]:
        res = self(*args, cwd=cwd)
        assert res.returncode == 0, res
        assert "ERROR" not in res.stdout
        return res.stdout.splitlines()

    def fails(self, *args: str, cwd: Path | None = None) -> list[str]:
        res = self(*args, cwd=cwd)
        assert res.returncode == 1, res
        lines = res.stdout.splitlines()
        assert lines and all("ERROR" in line for line in lines), res
        return lines

    def inject(self, **knobs: object) -> None:
        (self.state / "inject.json").write_text(json.dumps(knobs))

    def submit(self, *args: str, cwd: Path | None = None) -> list[tuple[int, int]]:
        """(PandaID, TaskID) of every submitted job."""
        lines = self.ok("job", "submit", *args, cwd=cwd)
        found = [SUBMITTED.match(line) for line in lines]
        assert all(found), lines
        return [(int(m.group(1)), int(m.group(2))) for m in found if m]

    def rows(self, *args: str) -> list[list[str]]:
        lines = self.ok("job", "status", *args)
        assert lines[1] and set(lines[1]) == {"-"}
        return [line.split() for line in lines[2:]]

    def state_of(self, panda_id: int) -> str:
        return self.rows(str(panda_id))[0][-1]

    def wait_for(self, panda_id: int, *states: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state_of(panda_id)
            if state in states or time.monotonic() > deadline:
                assert state in states, f"job {panda_id} is {state}, expected {states}"
                return state
            time.sleep(0.03)

    def table(self) -> dict:
        path = self.state / "table.json"
        return json.loads(path.read_text()) if path.exists() else {"jobs": {}}


@pytest.fixture
def dicos(tmp_path: Path) -> Iterator[Dicos]:
    state, work = tmp_path / "state", tmp_path / "work"
    state.mkdir()
    work.mkdir()
    tool = Dicos(state, work)
    tool.inject(start_delay_s=0.05)
    yield tool
    subprocess.run(
        [str(EMULATOR), "_shutdown"], env=tool.env, capture_output=True, timeout=30, check=True
    )
    pids = [
        pid
        for job in tool.table()["jobs"].values()
        for pid in (job["pgid"], job["runner_pid"])
        if pid
    ]
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)], "background processes outlived the test"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_state_folder_is_required(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DICOS_EMULATOR_STATE"}
    res = subprocess.run([str(EMULATOR), "ping"], env=env, capture_output=True, text=True)
    assert (res.returncode, res.stdout) == (1, "[ERROR] DICOS_EMULATOR_STATE is not set\n")


def test_ping_and_whoami(dicos: Dicos) -> None:
    assert dicos.ok("ping") == ["DiCOS server is alive."]
    dicos.inject(user="alice")
    assert dicos.ok("whoami") == ["Username: alice", "DN: /C=TW/O=AS/OU=GRID/CN=alice"]


def test_job_lifecycle_and_outputs(dicos: Dicos) -> None:
    write(dicos.workdir / "data.txt", "input\n")
    write(dicos.workdir / "edit.txt", "before\n")
    write(dicos.workdir / "lib" / "helper.txt", "unchanged\n")
    write(
        dicos.workdir / "job.sh",
        "sleep 0.4\nmkdir -p results/deep\necho done > results/deep/out.txt\n"
        "echo after > edit.txt\ncat data.txt\necho oops >&2\n",
    )
    dicos.inject(start_delay_s=0.4)
    start = time.monotonic()
    lines = dicos.ok("job", "submit", "-i", ".", "-N", "life", "-c", "bash job.sh")
    assert time.monotonic() - start < 3, "submit waited for the job"
    assert lines == ["Job 9000001 is submitted. (TaskID: 1001)"]
    assert dicos.state_of(9000001) == "activated"
    assert dicos.fails("job", "getoutput", "9000001") == ["[ERROR] Job 9000001 is not finished yet"]
    dicos.wait_for(9000001, "running")
    dicos.wait_for(9000001, "finished")

    fetch = dicos.workdir.parent / "fetch"
    fetch.mkdir()
    lines = dicos.ok("job", "getoutput", "9000001", cwd=fetch)
    assert lines == ["Got output of job 9000001 in ./DiCOS_job_9000001_life_output"]
    out = fetch / "DiCOS_job_9000001_life_output"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["edit.txt", "payload.stderr", "payload.stdout", "results/deep/out.txt"]
    assert (out / "results/deep/out.txt").read_text() == "done\n"
    assert (out / "payload.stdout").read_text() == "input\n"
    assert (out / "payload.stderr").read_text() == "oops\n"


def test_several_jobs_share_one_task(dicos: Dicos) -> None:
    write(dicos.workdir / "in.txt", "x")
    jobs = dicos.submit("-i", "in.txt", "-N", "three", "-c", "cat in.txt", "-j", "3")
    assert jobs == [(9000001, 1001), (9000002, 1001), (9000003, 1001)]
    resources = ["--requireCores", "2", "--requireRAM", "4000"]
    assert dicos.submit("-i", "in.txt", "-N", "next", "-c", "true", *resources) == [(9000004, 1002)]
    rows = dicos.rows("-T", "1001")
    assert [r[:3] for r in rows] == [["1001", str(p), "three"] for p, _ in jobs]
    assert [r[2] for r in dicos.rows("-S", "Name")] == ["next", "three", "three", "three"]
    assert [r[0] for r in dicos.rows("-S", "TaskID", "-R")] == ["1002", "1001", "1001", "1001"]


def test_arglist_gives_one_job_per_line(dicos: Dicos) -> None:
    write(dicos.workdir / "job.sh", 'printf "%s|" "$@"\n')
    write(dicos.workdir / "args.txt", "alpha 1\n\nbeta  $HOME\n'quoted word'\n")
    jobs = dicos.submit("-A", "args.txt", "-i", ".", "-N", "sweep", "-c", "bash job.sh")
    assert [t for _, t in jobs] == [1001] * 3
    outputs = []
    for panda_id, _ in jobs:
        dicos.wait_for(panda_id, "finished")
        dicos.ok("job", "getoutput", str(panda_id))
        outputs.append(
            (dicos.workdir / f"DiCOS_job_{panda_id}_sweep_output/payload.stdout").read_text()
        )
    # words split on whitespace and passed literally (no shell expansion)
    assert outputs == ["alpha|1|", "beta|$HOME|", "'quoted|word'|"]
    assert (
        "-j" in dicos.fails("job", "submit", "-A", "args.txt", "-i", ".", "-c", "x", "-j", "2")[0]
    )


def test_filelist_spreads_files_over_jobs(dicos: Dicos) -> None:
    names = [f"f{k}.txt" for k in range(5)]
    for name in names:
        write(dicos.workdir / name, name)
    write(dicos.workdir / "list.txt", "\n".join(names) + "\n")
    jobs = dicos.submit("-f", "list.txt", "-j", "2", "-N", "spread", "-c", "ls f*.txt > seen")
    seen = []
    for panda_id, _ in jobs:
        dicos.wait_for(panda_id, "finished")
        dicos.ok("job", "getoutput", str(panda_id))
        seen.append(
            (dicos.workdir / f"DiCOS_job_{panda_id}_spread_output/seen").read_text().split()
        )
    assert seen == [names[:2], names[2:]]


def test_status_shows_15_rows_unless_n(dicos: Dicos) -> None:
    write(dicos.workdir / "in.txt", "x")
    jobs = dicos.submit("-i", "in.txt", "-N", "many", "-c", "true", "-j", "20")
    assert len(jobs) == 20
    assert len(dicos.rows()) == 15
    assert len(dicos.rows("-T", "1001")) == 15
    assert len(dicos.rows("-n", "30")) == 20
    assert len(dicos.rows("-l", "-T", "1001", "-n", "30", "-t", "1")) == 20
    first = [int(r[1]) for r in dicos.rows()]
    assert first == list(range(9000001, 9000016))
    last = [int(r[1]) for r in dicos.rows("-S", "PandaID", "-R", "-n", "3")]
    assert last == [9000020, 9000019, 9000018]
    assert dicos.rows("-t", "0") == []
    assert "sort" in dicos.fails("job", "status", "-S", "Colour")[0]


def test_table_layout_is_exact(dicos: Dicos) -> None:
    assert dicos.ok("job", "status") == [HEADER, DASHES]
    dicos.inject(start_delay_s=30)
    write(dicos.workdir / "in.txt", "x")
    dicos.submit("-i", "in.txt", "-N", "NameOfJob", "-c", "true")
    assert dicos.ok("job", "status") == [
        HEADER,
        DASHES,
        " 1001      9000001  NameOfJob                 activated",
    ]
    long = dicos.ok("job", "status", "-l", "9000001")
    assert long[0] == (
        " TaskID    PandaID  Name                      Queue                           "
        "Creation_Time        End_Time             Status"
    )
    assert long[1] == "-" * (len(long[0]) + 1)
    assert re.fullmatch(
        r" 1001      9000001  NameOfJob                 ANALY_TAIWAN_TWGRID_CPU {9}"
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d  - {20}activated",
        long[2],
    ), long[2]


def test_failing_command_ends_failed(dicos: Dicos) -> None:
    write(dicos.workdir / "in.txt", "x")
    [(panda_id, _)] = dicos.submit("-i", "in.txt", "-N", "bad", "-c", "echo no >&2; exit 3")
    assert dicos.wait_for(panda_id, "finished", "failed") == "failed"
    dicos.ok("job", "getoutput", str(panda_id))
    assert (dicos.workdir / f"DiCOS_job_{panda_id}_bad_output/payload.stderr").read_text() == "no\n"


def test_cancel_kills_the_job(dicos: Dicos, tmp_path: Path) -> None:
    write(dicos.workdir / "in.txt", "x")
    pids = tmp_path / "pids"
    command = f"echo $$ > {pids}; sleep 30 & echo $! >> {pids}; wait"
    start = time.monotonic()
    [(panda_id, _)] = dicos.submit("-i", "in.txt", "-N", "sleepy", "-c", command)
    assert time.monotonic() - start < 5, "submit did not detach from the job's pipes"
    dicos.wait_for(panda_id, "running")
    deadline = time.monotonic() + 5
    while len(pids.read_text().split() if pids.exists() else []) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    procs = [int(p) for p in pids.read_text().split()]
    assert all(_alive(p) for p in procs)
    assert dicos.ok("job", "cancel", str(panda_id)) == [f"Job {panda_id} is cancelled."]
    assert dicos.state_of(panda_id) == "cancelled"
    deadline = time.monotonic() + 5
    while any(_alive(p) for p in procs) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(_alive(p) for p in procs)
    time.sleep(0.2)  # the runner's exit must not turn "cancelled" into "failed"
    assert dicos.state_of(panda_id) == "cancelled"
    assert dicos.fails("job", "cancel", str(panda_id))[0].startswith("[ERROR]")


def test_cancel_before_start_and_after_finish(dicos: Dicos, tmp_path: Path) -> None:
    write(dicos.workdir / "in.txt", "x")
    dicos.inject(start_delay_s=0.3)
    marker = tmp_path / "ran"
    [(early, _)] = dicos.submit("-i", "in.txt", "-N", "early", "-c", f"touch {marker}")
    dicos.ok("job", "cancel", str(early))
    [(done, _)] = dicos.submit("-i", "in.txt", "-N", "done", "-c", "true")
    dicos.wait_for(done, "finished")
    assert not marker.exists() and dicos.state_of(early) == "cancelled"
    assert dicos.fails("job", "cancel", str(done))[0].startswith("[ERROR]")
    assert dicos.fails("job", "cancel", "42")[0].startswith("[ERROR]")


def test_resubmit_runs_again_on_fresh_inputs(dicos: Dicos) -> None:
    write(dicos.workdir / "count.txt", "0\n")
    script = 'n=$(cat count.txt); echo $((n+1)) > count.txt; echo "$@"; exit 1\n'
    write(dicos.workdir / "job.sh", script)
    write(dicos.workdir / "args.txt", "one two\n")
    [(old, task)] = dicos.submit("-A", "args.txt", "-i", ".", "-N", "again", "-c", "bash job.sh")
    dicos.wait_for(old, "failed")
    lines = dicos.ok("job", "resubmit", str(old))
    assert lines == [f"Job {old + 1} is submitted. (TaskID: {task})"]
    new = old + 1
    dicos.wait_for(new, "failed")
    assert [int(r[1]) for r in dicos.rows()] == [new]
    assert [int(r[1]) for r in dicos.rows("-al")] == [old, new]
    assert [int(r[1]) for r in dicos.rows(str(old))] == [old]  # asked for by its id
    dicos.ok("job", "getoutput", str(new))
    out = dicos.workdir / f"DiCOS_job_{new}_again_output"
    assert (out / "count.txt").read_text() == "1\n"  # 2 if it reused the old job's copy
    assert (out / "payload.stdout").read_text() == "one two\n"
    assert dicos.fails("job", "resubmit", str(old))[0].startswith("[ERROR]")


def test_getoutput_by_task_with_unfinished_jobs(dicos: Dicos, tmp_path: Path) -> None:
    write(dicos.workdir / "args.txt", "0\n30\n")
    write(dicos.workdir / "in.txt", "x")
    jobs = dicos.submit("-A", "args.txt", "-i", "in.txt", "-N", "mixed", "-c", "sleep")
    (quick, task), (slow, _) = jobs
    dicos.wait_for(quick, "finished")
    dicos.wait_for(slow, "running")
    res = dicos("job", "getoutput", "-T", str(task), cwd=tmp_path)
    assert res.returncode == 1
    assert res.stdout.splitlines() == [
        f"Got output of job {quick} in ./DiCOS_job_{quick}_mixed_output",
        f"[ERROR] Job {slow} is not finished yet",
    ]
    assert (tmp_path / f"DiCOS_job_{quick}_mixed_output" / "payload.stdout").exists()
    assert not (tmp_path / f"DiCOS_job_{slow}_mixed_output").exists()


def test_stage_out_delay_keeps_the_job_running(dicos: Dicos) -> None:
    dicos.inject(start_delay_s=0, run_delay_s=0.6)
    write(dicos.workdir / "in.txt", "x")
    [(panda_id, _)] = dicos.submit("-i", "in.txt", "-N", "stage", "-c", "echo hello")
    out = dicos.state / "jobs" / str(panda_id) / "work" / "payload.stdout"
    deadline = time.monotonic() + 5
    while not (out.exists() and out.read_text()):  # the command has run
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert dicos.state_of(panda_id) == "running"  # the command is done, outputs not staged
    assert dicos.fails("job", "getoutput", str(panda_id))[0].endswith("is not finished yet")
    dicos.wait_for(panda_id, "finished")


def test_injected_proxy_failure(dicos: Dicos) -> None:
    dicos.inject(fail="proxy")
    for args in (["ping"], ["whoami"], ["job", "status"], ["job", "submit", "-i", ".", "-c", "x"]):
        lines = dicos.fails(*args)
        assert all(line.startswith("[ERROR]") for line in lines)
        assert "proxy" in lines[0]
    assert not (dicos.state / "jobs").exists()


def test_injected_download_failure(dicos: Dicos) -> None:
    write(dicos.workdir / "in.txt", "x")
    [(panda_id, task)] = dicos.submit("-i", "in.txt", "-N", "dl", "-c", "true")
    dicos.wait_for(panda_id, "finished")
    dicos.inject(fail="download")
    for args in ([str(panda_id)], ["-T", str(task)]):
        [line] = dicos.fails("job", "getoutput", *args)
        assert re.fullmatch(
            rf"\[\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d ERROR\] Failed to download output of job "
            rf"{panda_id}",
            line,
        )
    assert not list(dicos.workdir.glob("DiCOS_job_*"))


@pytest.mark.parametrize("name", ["has space", "a" * 26, "tab\there"])
def test_bad_job_names_are_refused(dicos: Dicos, name: str) -> None:
    write(dicos.workdir / "in.txt", "x")
    [line] = dicos.fails("job", "submit", "-i", "in.txt", "-N", name, "-c", "true")
    assert line.startswith("[ERROR]")
    assert dicos.ok("job", "status") == [HEADER, DASHES]


def test_longest_name_fits(dicos: Dicos) -> None:
    write(dicos.workdir / "in.txt", "x")
    name = "n" * 25
    dicos.inject(start_delay_s=30)
    dicos.submit("-i", "in.txt", "-N", name, "-c", "true")
    assert dicos.ok("job", "status")[2] == f" 1001      9000001  {name} activated"


@pytest.mark.parametrize(
    "args",
    [
        ["job", "status", "9999999"],
        ["job", "status", "-T", "77"],
        ["job", "status", "--bogus"],
        ["job", "getoutput", "9999999"],
        ["job", "resubmit", "9999999"],
        ["job", "frobnicate"],
        ["job", "submit", "-i", "missing.txt", "-N", "x", "-c", "true"],
        ["job", "submit", "-i", ".", "-N", "x"],
        ["job", "submit", "-i", ".", "-c", "true", "-j", "0"],
        ["job", "submit", "-i", ".", "-c", "true", "--requireCores", "0"],
        ["job", "submit", "-i", ".", "-c", "true", "--requireRAM", "lots"],
        ["job", "submit", "-i", ".", "-c", "true", "--queue", "X"],
        ["job", "cancel"],
        ["teleport"],
    ],
)
def test_errors_are_error_lines_on_stdout(dicos: Dicos, args: list[str]) -> None:
    res = dicos(*args)
    assert res.returncode == 1
    assert res.stdout.startswith("[ERROR] ")
    assert res.stderr == ""

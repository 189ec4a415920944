"""Collect under attack and under faults: crafted archives, links on the cluster side,
foreign files in the target, two collects at once, Ctrl-C, a gzip bomb.

A crafted archive reaches ``collect`` through a transport whose tar stream is the
archive itself; the cluster-side tests run the real fetch script (find + GNU tar) on
this machine through the local transport.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_run_edge_cases import make_record

from hpctriton.errors import UsageError
from hpctriton.runs import collect as collect_module
from hpctriton.runs.collect import (
    OWNERSHIP,
    CollectIncomplete,
    CollectReport,
    collect,
    verify_task_dir,
)
from hpctriton.runs.lock import FolderBusy, folder_lock
from hpctriton.runs.record import RunRecord
from hpctriton.schedulers import JobRef
from hpctriton.schedulers.slurm import SlurmScheduler
from hpctriton.transport import LocalTransport
from hpctriton.transport.base import ByteStream, Finish

STATE = b'{"schema_version": 1, "phase": "finished", "task": 0, "exit_code": 0}\n'


def task_files(task: int, extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """A task folder as job.sh leaves it: results, state and a manifest covering them."""
    files = {"results.json": b'{"checks": []}\n', "probe.log": b"log\n", "state.json": STATE,
             **(extra or {})}
    manifest = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                       for name, data in sorted(files.items()))
    files["MANIFEST.sha256"] = manifest.encode()
    return {f"results/{task}/{name}": data for name, data in files.items()}


@dataclass
class Member:
    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""
    size: int | None = None  # a declared size other than len(data) (a bomb's zeros)


def archive(*groups: dict[str, bytes] | list[Member]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for group in groups:
            members = ([Member(n, d) for n, d in group.items()] if isinstance(group, dict)
                       else group)
            for m in members:
                info = tarfile.TarInfo(m.name)
                info.type = m.kind
                info.linkname = m.link
                if m.kind == tarfile.REGTYPE:
                    info.size = len(m.data) if m.size is None else m.size
                    source = io.BytesIO(m.data) if m.size is None else _Zeros(m.size)
                    tar.addfile(info, source)
                else:
                    tar.addfile(info)
    return buffer.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = min(len(b), self.left)
        b[:n] = bytes(n)
        self.left -= n
        return n

    def readable(self) -> bool:
        return True


class _CountingStream(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        self.read_bytes += len(chunk)
        return chunk


@dataclass
class ArchiveTransport(LocalTransport):
    """The cluster's side for a crafted archive: listing runs here, the stream is given."""

    stream: bytes = b""
    stderr: str = ""
    aborted: list[bool] = field(default_factory=list)
    opened: list[_CountingStream] = field(default_factory=list)

    def _open_tar_stream(self, script: str) -> tuple[ByteStream, Finish]:
        stream = _CountingStream(self.stream)
        self.opened.append(stream)

        def finish(abort: bool) -> tuple[int, str]:
            self.aborted.append(abort)
            return (-1 if abort else 0), self.stderr

        return stream, finish


def remote_tasks(record: RunRecord, *tasks: int) -> None:
    for task in tasks:
        (Path(record.remote_dir) / "results" / str(task)).mkdir(parents=True, exist_ok=True)


def run_collect(record: RunRecord, data: bytes, tasks: list[int], **kw: object
                ) -> tuple[CollectReport, ArchiveTransport]:
    transport = ArchiveTransport(stream=data)
    remote_tasks(record, *tasks)
    try:
        report = collect(transport, SlurmScheduler(), record, tasks, **kw)  # type: ignore[arg-type]
    except CollectIncomplete as exc:
        report = exc.report
    return report, transport


def no_scratch_left(target: Path) -> bool:
    return not [p for p in target.iterdir() if p.name.startswith((".hpctriton-incoming",
                                                                  ".incoming"))]


BAD_MEMBERS = {
    "dot-dot": (Member("results/0/../../../escaped.txt", b"x"), "leaves the target"),
    "symlink": (Member("results/0/passwd", kind=tarfile.SYMTYPE, link="/etc/passwd"),
                "symbolic link"),
    "hard link": (Member("results/0/hard", kind=tarfile.LNKTYPE,
                         link="results/0/results.json"), "hard link"),
    "device": (Member("results/0/null", kind=tarfile.CHRTYPE), "device"),
    "fifo": (Member("results/0/fifo", kind=tarfile.FIFOTYPE), "FIFO"),
    "duplicate": (Member("results/0/results.json", b'{"checks": "forged"}'), "twice"),
}


@pytest.mark.parametrize("bad", BAD_MEMBERS, ids=list(BAD_MEMBERS))
def test_a_crafted_member_refuses_its_task_and_the_others_arrive(tmp_path: Path,
                                                                 bad: str) -> None:
    member, why = BAD_MEMBERS[bad]
    record = make_record(tmp_path, n=2)
    data = archive(task_files(0), [member], task_files(1))
    report, _ = run_collect(record, data, [0, 1])
    assert report.fetched == [1]
    assert 0 in report.refused and why in " ".join(report.refused[0])
    assert not (record.results_dir / "0").exists()
    assert verify_task_dir(record.results_dir / "1") == []
    assert not list(tmp_path.rglob("escaped.txt"))
    assert no_scratch_left(record.results_dir)


def test_absolute_and_stray_members_are_refused_and_written_nowhere(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=1)
    outside = tmp_path / "absolute.txt"
    data = archive(task_files(0), [Member(str(outside), b"x"), Member("elsewhere.txt", b"y")])
    report, _ = run_collect(record, data, [0])
    assert report.fetched == [0]  # the task itself was whole
    assert any("leaves the target" in e for e in report.errors)
    assert any("not a file collect asked for" in e for e in report.errors)
    assert not outside.exists() and not list(tmp_path.rglob("elsewhere.txt"))


def test_a_gzip_bomb_stops_at_the_cap_without_reading_on(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=2)
    bomb = [Member("results/0/zeros", size=64 << 20)]  # 64 MB of zeros, ~64 KB gzipped
    data = archive(bomb, task_files(0), task_files(1))
    report, transport = run_collect(record, data, [0, 1], max_mb=1)
    assert any("cap of 1 MB" in e and "--max-size" in e for e in report.errors)
    assert report.fetched == [] and set(report.refused) == {0, 1}
    assert transport.aborted == [True]  # the stream was stopped, not drained
    assert transport.opened[0].read_bytes < len(data)
    assert not (record.results_dir / "0").exists()
    assert no_scratch_left(record.results_dir)


def test_a_manifest_naming_files_outside_the_task_is_refused_unread(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("local secret")
    record = make_record(tmp_path, n=1)
    files = task_files(0)
    files["results/0/MANIFEST.sha256"] += (f"{'0' * 64}  {secret}\n{'0' * 64}  "
                                           "../../../secret.txt\n").encode()
    report, _ = run_collect(record, archive(files), [0])
    assert 0 in report.corrupted
    text = " ".join(report.corrupted[0])
    assert "outside the task folder" in text
    assert hashlib.sha256(b"local secret").hexdigest()[:12] not in text


def test_a_task_without_a_manifest_is_accepted_only_as_unverified(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=1)
    files = {k: v for k, v in task_files(0).items() if not k.endswith("MANIFEST.sha256")}
    report, _ = run_collect(record, archive(files), [0])
    assert report.fetched == [0] and report.unverified == [0]
    assert not report.complete
    assert any("UNVERIFIED" in line for line in report.problems())


def test_collect_into_a_folder_it_did_not_write_changes_nothing(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=1)
    target = tmp_path / "mine"
    (target / "0").mkdir(parents=True)
    (target / "0" / "important.txt").write_text("keep me")
    (target / ".incoming-mydata").mkdir()
    before = sorted(p.relative_to(target) for p in target.rglob("*"))
    remote_tasks(record, 0)
    with pytest.raises(UsageError, match="not empty.*never collected into it"):
        collect(ArchiveTransport(stream=archive(task_files(0))), SlurmScheduler(), record, [0],
                target)
    assert sorted(p.relative_to(target) for p in target.rglob("*")) == before


def test_files_someone_else_put_in_a_collected_folder_are_left_alone(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=1, jobs=[JobRef("273", [0])])
    target = tmp_path / "out"
    data = archive(task_files(0), {"results/slurm-273.out": b"job log\n"})
    report, _ = run_collect(record, data, [0], out_dir=target)
    assert report.fetched == [0] and (target / "slurm-273.out").is_file()
    assert json.loads((target / OWNERSHIP).read_text())["run_id"] == record.run_id
    # someone adds a file to task 0 and replaces the job log; the task must be fetched again
    (target / "0" / "important.txt").write_text("keep me")
    (target / "slurm-273.out").unlink()
    (target / "slurm-273.out").write_text("my own notes")
    ownership = json.loads((target / OWNERSHIP).read_text())
    ownership["files"] = []
    (target / OWNERSHIP).write_text(json.dumps(ownership))
    data = archive(task_files(0), {"results/slurm-273.out": b"job log, longer\n"})
    report, _ = run_collect(record, data, [0], out_dir=target)
    assert 0 in report.refused and "important.txt" in report.refused[0][0]
    assert (target / "0" / "important.txt").read_text() == "keep me"
    assert (target / "slurm-273.out").read_text() == "my own notes"
    assert report.kept and not report.complete


def test_a_second_collect_of_the_same_run_is_refused_while_one_runs(tmp_path: Path) -> None:
    record = make_record(tmp_path, n=1)
    remote_tasks(record, 0)
    with folder_lock(record.path, "collect"), pytest.raises(FolderBusy, match="in use by"):
        collect(ArchiveTransport(stream=archive(task_files(0))), SlurmScheduler(), record, [0])
    assert not (record.results_dir / "0").exists()
    report, _ = run_collect(record, archive(task_files(0)), [0])  # once it is free
    assert report.fetched == [0]


def test_ctrl_c_while_extracting_stops_reading_and_leaves_no_scratch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = make_record(tmp_path, n=2)
    real: Callable[..., None] = collect_module._Extractor._write

    def interrupted(self: object, archive: tarfile.TarFile, member: tarfile.TarInfo,
                    path: object) -> None:
        if member.name.startswith("results/1/"):
            raise KeyboardInterrupt
        real(self, archive, member, path)

    monkeypatch.setattr(collect_module._Extractor, "_write", interrupted)
    transport = ArchiveTransport(stream=archive(task_files(0), task_files(1),
                                                [Member("results/1/big", size=8 << 20)]))
    remote_tasks(record, 0, 1)
    with pytest.raises(KeyboardInterrupt):
        collect(transport, SlurmScheduler(), record, [0, 1])
    assert transport.aborted == [True]
    assert no_scratch_left(record.results_dir)
    assert not (record.results_dir / "0").exists()  # nothing half-done


def test_ctrl_c_stops_a_large_stream_at_once(tmp_path: Path) -> None:
    """The transport stops the remote tar when extraction ends early, instead of
    draining the rest of the stream into memory."""
    big = tmp_path / "big"
    with big.open("wb") as fh:
        fh.truncate(3 << 30)  # 3 GB of zeros, sparse: gzip would need about 15 s for it
    (tmp_path / "small").write_bytes(b"x")

    pressed: list[float] = []

    def first_member_then_stop(archive: tarfile.TarFile) -> None:
        next(iter(archive))
        pressed.append(time.monotonic())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        LocalTransport().fetch_tar_script(f"cd {tmp_path} && tar -czf - small big",
                                          first_member_then_stop)
    assert time.monotonic() - pressed[0] < 2  # draining the rest took 10-20 s


def test_remote_links_and_fifos_are_reported_and_never_followed(tmp_path: Path) -> None:
    """The real fetch script on this machine: find + GNU tar, no dereferencing."""
    record = make_record(tmp_path, n=3)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for collect")
    results = Path(record.remote_dir) / "results"
    for task in (0, 1):
        for name, data in task_files(task).items():
            path = Path(record.remote_dir) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    (results / "0" / "stolen").symlink_to(secret)
    (results / "0" / "dangling").symlink_to(tmp_path / "nowhere")
    os.mkfifo(results / "0" / "fifo")
    (results / "2").symlink_to("/")  # a task folder that is a link to the root
    with pytest.raises(CollectIncomplete) as err:
        collect(LocalTransport(), SlurmScheduler(), record, [0, 1, 2])
    report = err.value.report
    assert sorted(report.fetched) == [0, 1]
    skipped = " ".join(report.skipped[0])
    assert "stolen: a symbolic link" in skipped and "fifo: a FIFO" in skipped
    assert "dangling: a symbolic link" in skipped
    assert 2 in report.refused and "not a folder" in report.refused[2][0]
    local = {p.name for p in (record.results_dir / "0").iterdir()}
    assert not local & {"stolen", "dangling", "fifo"}
    assert not any(b"not for collect" in p.read_bytes()
                   for p in record.results_dir.rglob("*") if p.is_file())
    assert not (record.results_dir / "2").exists()

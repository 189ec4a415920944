"""The local transport: the same interface, for running on the login node itself."""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hpctriton.errors import CommandError
from hpctriton.transport.base import ByteStream, Transport


def _drain(pipe: IO[bytes], sink: list[bytes]) -> threading.Thread:
    thread = threading.Thread(target=lambda: sink.append(pipe.read()), daemon=True)
    thread.start()
    return thread


@dataclass
class LocalTransport(Transport):
    """Runs scripts with ``bash -s`` on this machine."""

    label: str = "localhost"

    def _run(self, script: str, timeout: float | None) -> tuple[int, str, str]:
        try:
            proc = subprocess.run(["bash", "-s"], input=script.encode(), capture_output=True,
                                  timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired as exc:
            raise CommandError(script, -1, "", f"timed out after {timeout} s",
                               transient=True) from exc
        return (proc.returncode, proc.stdout.decode("utf-8", "replace"),
                proc.stderr.decode("utf-8", "replace"))

    def _stream(self, script: str, timeout: float | None) -> Iterator[str]:
        proc = subprocess.Popen(["bash", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(script.encode())
        proc.stdin.close()
        errors: list[bytes] = []
        drain = _drain(proc.stderr, errors)
        try:
            for raw in proc.stdout:
                yield raw.decode("utf-8", "replace").rstrip("\n")
        finally:
            if proc.poll() is None:
                proc.kill()
            code = proc.wait()
            drain.join(timeout=5)
        if code != 0:
            raise CommandError(script, code, "", b"".join(errors).decode("utf-8", "replace"))

    def put_files(self, files: Sequence[tuple[Path, str]], remote_dir: str) -> None:
        root = Path(remote_dir)
        for local, name in files:
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(local, target)

    def _open_tar_stream(self, script: str) -> tuple[ByteStream, Callable[[], tuple[int, str]]]:
        proc = subprocess.Popen(["bash", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(script.encode())
        proc.stdin.close()
        errors: list[bytes] = []
        drain = _drain(proc.stderr, errors)

        def finish() -> tuple[int, str]:
            assert proc.stdout
            proc.stdout.read()  # let tar finish writing whatever was not consumed
            code = proc.wait()
            drain.join(timeout=10)
            return code, b"".join(errors).decode("utf-8", "replace")

        return proc.stdout, finish

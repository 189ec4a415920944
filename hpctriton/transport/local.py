"""The local transport: the same interface, for running on the login node itself."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from hpctriton.errors import CommandError, TransportError
from hpctriton.transport.base import (
    STAGED_DIR_MODE,
    STAGED_FILE_MODE,
    ByteStream,
    Finish,
    Transport,
    drain,
)


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
        current = root
        try:
            for local, name in files:
                current = root / name
                for parent in reversed(current.relative_to(root).parents):
                    folder = root / parent
                    if not folder.is_dir():
                        folder.mkdir(mode=STAGED_DIR_MODE, parents=True)
                fd = os.open(current, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, STAGED_FILE_MODE)
                os.fchmod(fd, STAGED_FILE_MODE)
                with os.fdopen(fd, "wb") as out, local.open("rb") as src:
                    shutil.copyfileobj(src, out)
        except OSError as exc:
            raise TransportError(f"copying files to {remote_dir} failed ({current}): "
                                 f"{exc.strerror or exc}"
                                 + (": is the disk full, or your quota used up?"
                                    if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "")
                                 ) from None

    def _open_tar_stream(self, script: str) -> tuple[ByteStream, Finish]:
        proc = subprocess.Popen(["bash", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(script.encode())
        proc.stdin.close()
        errors: list[bytes] = []
        errors_drain = _drain(proc.stderr, errors)

        def finish(abort: bool) -> tuple[int, str]:
            assert proc.stdout
            if abort:
                # stop the script and its tar at once (its own process group)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            else:
                drain(proc.stdout)  # let tar finish writing what was not consumed
            code = proc.wait()
            proc.stdout.close()
            errors_drain.join(timeout=10)
            return (-1 if abort else code), b"".join(errors).decode("utf-8", "replace")

        return proc.stdout, finish

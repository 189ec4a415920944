"""Build ``probe.pyz``: the probe package as a reproducible zipapp.

Only the pure-Python ``hpctriton_probe`` package goes in, under its own top-level name,
so nothing in the zip imports ``hpctriton`` or its dependencies; numpy and tritonclient
come from the interpreter's site-packages (numpy refuses to import from a zip, and a
copied tritonclient would hide the installed one). Fixed timestamps and sorted entries
make the same probe code give byte-identical archives.
"""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from pathlib import Path

import hpctriton_probe

SHEBANG = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _probe_sources() -> list[tuple[str, bytes]]:
    root = Path(hpctriton_probe.__file__).resolve().parent
    entries = []
    for path in sorted(root.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(root.parent).as_posix()
        entries.append((rel, path.read_bytes()))
    main = root / "_zipmain.py"
    if not main.is_file():
        raise FileNotFoundError(f"{main} is missing: the probe package is incomplete")
    entries.append(("__main__.py", main.read_bytes()))
    return entries


@functools.lru_cache(maxsize=1)
def probe_zipapp() -> bytes:
    """The bytes of ``probe.pyz`` (built once per process)."""
    buffer = io.BytesIO()
    buffer.write(SHEBANG)
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in _probe_sources():
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buffer.getvalue()


def probe_digest() -> str:
    """sha256 of ``probe.pyz``, recorded in run records."""
    return hashlib.sha256(probe_zipapp()).hexdigest()

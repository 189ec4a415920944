# The __main__.py of probe.pyz. Parseable by Python 2.7 and 3.6 (no f-strings, no
# annotations) so that an old interpreter prints one line and exits 2 instead of
# failing with a SyntaxError inside the package.
import sys

if sys.version_info < (3, 7):  # noqa: UP036 - this file exists for old Pythons
    # %-formatting on purpose: Python 2.7 must be able to run this line.
    message = "hpctriton probe needs Python 3.7 or newer; this is %d.%d (%s): use " % (  # noqa: UP031
        sys.version_info[0], sys.version_info[1], sys.executable)
    sys.stderr.write(message + "container.python / cluster python to pick another interpreter\n")
    sys.exit(2)


def _bytecode_cache():
    """Import the probe from an extracted copy, so Python can cache its bytecode.

    zipimport compiles every module from source on every run (about 40 ms for the
    probe); an extracted copy is compiled once into ``__pycache__`` (even under
    PYTHONDONTWRITEBYTECODE: the cache is ours), so the second task of an array job and
    every later run start faster. The copy lives in
    ``.probe-cache/<digest>/`` beside probe.pyz (or in ``$HPCTRITON_PROBE_CACHE``; set
    it to ``off`` to import from the zip). The digest is a sha256 of the zip's central
    directory (every member's name, size and CRC-32), which Python reads anyway: a task
    of a large array job does not read the whole zip to find its cache. Any problem (a
    read-only bundle, a full disk) quietly falls back to the zip.
    """
    import hashlib
    import os
    import zipfile

    setting = os.environ.get("HPCTRITON_PROBE_CACHE", "")
    archive = os.path.dirname(os.path.abspath(__file__))
    if setting.lower() in ("off", "0", "no", "false") or not os.path.isfile(archive):
        return  # switched off, or not run from a zip file
    with zipfile.ZipFile(archive) as zf:
        members = sorted((i.filename, i.file_size, i.CRC) for i in zf.infolist())
    digest = hashlib.sha256(repr(members).encode("utf-8")).hexdigest()[:20]
    base = setting or os.path.join(os.path.dirname(archive), ".probe-cache")
    target = os.path.join(base, digest)
    package = os.path.join(target, "hpctriton_probe")
    if not os.path.isfile(os.path.join(package, "__init__.py")):
        import shutil

        os.makedirs(base, exist_ok=True)
        tmp = "%s.tmp-%d" % (target, os.getpid())  # noqa: UP031 - Python 2.7 parses this
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp, [n for n in zf.namelist() if n.startswith("hpctriton_probe/")])
        try:
            os.rename(tmp, target)  # atomic: a concurrent task sees all of it or nothing
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)  # another task was first
            if not os.path.isdir(package):
                return
    import importlib.util

    if not os.path.isfile(importlib.util.cache_from_source(os.path.join(package, "__init__.py"))):
        import compileall

        compileall.compile_dir(package, quiet=1)  # per Python version; writes are atomic
    sys.path.insert(0, target)


import contextlib  # noqa: E402 - after the version check, like everything else
import os  # noqa: E402

with contextlib.suppress(Exception):  # any problem: the zip itself always works
    _bytecode_cache()

from hpctriton_probe.cli import main  # noqa: E402 - only after the version check

code = main()
# Everything the probe writes is complete and closed by now; skip the interpreter's
# teardown, where gRPC, gevent and numpy spend about 50 ms finalizing.
with contextlib.suppress(Exception):
    sys.stdout.flush()
    sys.stderr.flush()
os._exit(code)

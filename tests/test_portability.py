"""probe.pyz in the Pythons and tritonclients that sites' images carry.

One virtual environment per entry of ``hpctriton.tools.compat.MATRIX`` (built by
``scripts/portability-venvs`` under ``.venv-compat/``, or ``$HPCTRITON_COMPAT_VENVS``):
a rendered bundle's ``probe.pyz`` runs the default checks in each, with that venv's
Python, against the real test Triton (server 2.51). A missing venv is
``service_policy.unavailable``: a skip on a laptop, a failure under ``CI=true``.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_triton import RESTRICTED_KEY, RESTRICTED_VALUE, HTTPSProxy, TLSFiles
from service_policy import unavailable

from hpctriton.config import config_from_data
from hpctriton.render.bundle import render_bundle
from hpctriton.testing import TritonServer
from hpctriton.tools.compat import MATRIX, NEWEST, PROBE_MIN_PYTHON, CompatTarget
from hpctriton_probe.spec import DEFAULT_CHECKS

pytestmark = pytest.mark.service

REPO = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("HPCTRITON_COMPAT_VENVS") or REPO / ".venv-compat")
MODELS = ["simple", "identity_all_types"]  # identity_all_types: every datatype, BF16 too
CHECKS = ["health", "metadata", "keepalive",
          {"infer": {"shapes": {"IN_FP32": [2, 2], "IN_BYTES": [3]}}}, "statistics", "metrics"]

#: Per environment: the entries ``(check, protocol, model)`` of the default suite that
#: may be ``skip``, with a piece of the reason the message must state. Every other
#: entry must pass. Empty everywhere, on purpose: what older tritonclients lack is
#: either not needed by the default suite or made up for by the probe:
#:
#: * tritonclient 2.30 has no ``client_timeout`` on gRPC calls other than ``infer``:
#:   the probe sets the deadline itself (GRPC_DEADLINES below), nothing skips;
#: * 2.30 has all four ``KeepAliveOptions`` fields, so keepalive sets them all;
#: * 2.30 and 2.51 send BF16 as float32, 2.60+ as ml_dtypes.bfloat16: both pass;
#: * the aio clients import on all of them, and the default suite does not use them.
#:
#: The skip paths themselves (a tritonclient without BF16, without a KeepAliveOptions
#: field or without KeepAliveOptions) are tested in tests/test_probe_features.py.
#: tritonclient 2.18 (seed 001's image) has no numpy type for BF16: infer skips
#: identity_all_types, naming the tensors.
_NO_BF16 = {("infer", p, "identity_all_types"): "has no numpy type for BF16"
            for p in ("http", "grpc")}
MAY_SKIP: dict[str, dict[tuple[str, str | None, str | None], str]] = {
    "py37-tc2.18": _NO_BF16,
    "py38-tc2.18": _NO_BF16,
    "py38-tc2.30": {},
    "py38-tc2.51": {},
    "py311-tc2.51": {},
    "newest": {},
}

#: How the probe gives gRPC calls their deadline where tritonclient cannot
#: (``features.GrpcDeadlines`` mode, as probe.log says); None: tritonclient does it.
GRPC_DEADLINES: dict[str, str | None] = {
    "py37-tc2.18": "interceptor",
    "py38-tc2.18": "interceptor",
    "py38-tc2.30": "interceptor",
    "py38-tc2.51": None,
    "py311-tc2.51": None,
    "newest": None,
}

#: Entries whose tritonclient's generated gRPC code needs the pure-Python protobuf
#: (protobuf 4+ from pip with the code of 2.18): the probe runs again with it, says so.
PROTOBUF_RERUN = {"py38-tc2.18"}

#: Every entry the default suite gives for MODELS (nothing may silently go missing).
EXPECTED_ENTRIES = (
    {(c, p, None) for c in ("health", "metadata") for p in ("http", "grpc")}
    | {(c, p, m) for c in ("health", "metadata", "infer", "statistics")
       for p in ("http", "grpc") for m in MODELS}
    | {("keepalive", "grpc", None), ("metrics", "http", None)}
    | {("metrics", "http", m) for m in MODELS}
)


def test_every_matrix_entry_says_what_may_skip() -> None:
    names = [t.name for t in MATRIX]
    assert sorted(MAY_SKIP) == sorted(names) == sorted(GRPC_DEADLINES)
    assert set(names) >= PROTOBUF_RERUN


def test_the_matrix_has_the_images_sites_really_have() -> None:
    """Issue 12: seed 001's buster image (Python 3.7, tritonclient 2.18, protobuf 3.x),
    and 2.18 with whatever protobuf pip picks today."""
    pairs = {(t.python, t.tritonclient, t.protobuf) for t in MATRIX}
    assert ("3.7", "2.18.0", "3.20.3") in pairs and ("3.8", "2.18.0", None) in pairs
    assert PROBE_MIN_PYTHON == (3, 7)


def test_the_matrix_runs_the_whole_default_suite() -> None:
    """A check added to the default suite must be added here, with what may skip."""
    names = [c if isinstance(c, str) else next(iter(c)) for c in CHECKS]
    assert names == DEFAULT_CHECKS


def _venv_python(entry: CompatTarget) -> str:
    python = VENVS / entry.name / "bin" / "python"
    stamp = VENVS / entry.name / ".hpctriton-compat"
    if not (python.exists() and stamp.exists()):
        unavailable(f"venv {entry.name}", f"{VENVS / entry.name} is missing or incomplete; "
                    f"build it with: scripts/portability-venvs {entry.name}")
    return str(python)


@pytest.fixture(params=MATRIX, ids=[t.name for t in MATRIX])
def compat(request: pytest.FixtureRequest) -> tuple[CompatTarget, str]:
    """A matrix entry and its venv's Python."""
    entry: CompatTarget = request.param
    return entry, _venv_python(entry)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYTHONHOME", "SLURM_ARRAY_TASK_ID", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def run_probe(tmp_path: Path, python: str, server: dict, checks: list,
               probe: dict | None = None, timeout: float = 180,
               models: list[str] = MODELS) -> tuple:
    """Render a local bundle for ``python`` (runtime none) and run its probe.pyz with
    that Python; returns (completed process, results or None, probe.log text)."""
    data = {
        "server": server, "models": models, "checks": checks,
        "probe": probe or {"timeout_s": 10, "retries": 1, "retry_backoff_s": 0.2},
        "container": {"runtime": "none"},
        "clusters": {"here": {"backend": "local", "python": python}},
    }
    config = config_from_data(data, base_dir=tmp_path)
    bundle = render_bundle(config, tmp_path / "bundle", cluster="here", force=True)
    pyz = bundle.path / "probe.pyz"
    done = subprocess.run([python, str(pyz), "--spec", str(bundle.path / "spec.json"),
                           "--out", str(bundle.path / "results")], capture_output=True,
                          text=True, timeout=timeout, env=_env(), cwd=str(tmp_path))
    task_dir = bundle.path / "results" / "0"
    results_path = task_dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else None
    log = (task_dir / "probe.log").read_text() if (task_dir / "probe.log").exists() else ""
    return done, results, log


def server_of(triton: TritonServer) -> dict:
    return {"host": "127.0.0.1", "http_port": triton.http_port,
            "grpc_port": triton.grpc_port, "metrics_port": triton.metrics_port}


def test_default_suite_passes_in_every_environment_of_the_matrix(
        triton: TritonServer, tmp_path: Path, compat: tuple[CompatTarget, str]) -> None:
    entry, python = compat
    done, results, log = run_probe(tmp_path, python, server_of(triton), CHECKS)
    assert results is not None, done.stdout + done.stderr
    versions = results["run"]["versions"]
    if entry.python != NEWEST:
        assert versions["python"].startswith(entry.python + "."), versions
    else:
        assert tuple(int(x) for x in versions["python"].split(".")[:2]) >= PROBE_MIN_PYTHON
    if entry.tritonclient:
        assert versions["tritonclient"] == entry.tritonclient, versions
    by_key = {(e["check"], e["protocol"], e["model"]): e for e in results["checks"]}
    assert set(by_key) == EXPECTED_ENTRIES, sorted(set(by_key) ^ EXPECTED_ENTRIES)
    may_skip = MAY_SKIP[entry.name]
    wrong = []
    for key, e in by_key.items():
        if e["status"] == "pass":
            continue
        if e["status"] == "skip" and key in may_skip and may_skip[key] in e["message"]:
            continue
        wrong.append(e)
    assert not wrong, f"{entry.name} ({versions}):\n" + json.dumps(wrong, indent=1)
    assert done.returncode == 0, done.stdout + done.stderr
    # Where tritonclient cannot set a gRPC call's deadline, the probe does, and says so.
    mode = GRPC_DEADLINES[entry.name]
    if mode is None:
        assert "sets their deadlines itself" not in log
    else:
        assert f"sets their deadlines itself ({mode})" in log, log
    # Old generated protobuf code under a new protobuf: run again, pure-Python, and say so.
    rerun = [w for w in results["run"]["workarounds"] if "Descriptors cannot be created" in w]
    if entry.name in PROTOBUF_RERUN:
        assert rerun and "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python" in rerun[0], results
        assert "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python" in log
    else:
        assert not rerun, results["run"]["workarounds"]


def _only(protocol: str, *checks: str) -> list[dict]:
    return [{name: {"protocols": [protocol]}} for name in checks]


def test_tls_and_headers_work_in_every_environment(
        triton_mtls: TritonServer, https_proxy: HTTPSProxy, triton_restricted: TritonServer,
        tls_files: TLSFiles, tmp_path: Path, compat: tuple[CompatTarget, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """gRPC with mutual TLS, HTTPS (old and new geventhttpclient take the SSL context
    differently) and headers (over gRPC they pass the probe's deadline interceptor)."""
    entry, python = compat
    runs = {
        "grpc mutual TLS": ({"host": "127.0.0.1", "grpc_port": triton_mtls.grpc_port,
                             "tls": {"ca": tls_files.ca, "cert": tls_files.client_cert,
                                     "key": tls_files.client_key}},
                            [*_only("grpc", "health", "metadata", "infer"), "keepalive"]),
        "HTTPS": ({"host": "127.0.0.1", "http_port": https_proxy.port,
                   "tls": {"ca": https_proxy.ca}}, _only("http", "health", "metadata", "infer")),
        "headers": ({"host": "127.0.0.1", "http_port": triton_restricted.http_port,
                     "grpc_port": triton_restricted.grpc_port,
                     "headers": {RESTRICTED_KEY: "${HPCTRITON_TEST_KEY}",
                                 f"triton-grpc-protocol-{RESTRICTED_KEY}":
                                     "${HPCTRITON_TEST_KEY}"}},
                    ["health", "metadata", "infer", "statistics"]),
    }
    monkeypatch.setenv("HPCTRITON_TEST_KEY", RESTRICTED_VALUE)  # expanded inside the job
    for what, (server, checks) in runs.items():
        done, results, _ = run_probe(tmp_path / what.replace(" ", "-"), python, server,
                                      checks, models=["simple"])
        assert results is not None, f"{what}: {done.stdout}{done.stderr}"
        bad = [e for e in results["checks"] if e["status"] != "pass"]
        assert not bad, f"{entry.name}, {what}:\n" + json.dumps(bad, indent=1)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_silent_server_fails_at_the_timeout_in_every_environment(
        silent_port: int, hangs_after_greeting: int, tmp_path: Path,
        compat: tuple[CompatTarget, str]) -> None:
    """A server that never answers is found by the first contact, at once for every
    endpoint; one that greets and then hangs fails each call at its timeout: the
    per-call timeout holds on gRPC too, also where tritonclient has none."""
    entry, python = compat
    server = {"host": "127.0.0.1", "http_port": silent_port, "grpc_port": silent_port,
              "metrics_port": None}
    started = time.monotonic()
    done, results, _ = run_probe(tmp_path / "silent", python, server,
                                  ["keepalive", "health"],
                                  probe={"timeout_s": 1.0, "retries": 0}, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert time.monotonic() - started < 1 + 5
    assert {e["status"] for e in results["checks"]} == {"fail"}
    assert len(results["run"]["first_contact"]["silent"]) == 2
    server = {"host": "127.0.0.1", "http_port": hangs_after_greeting,
              "grpc_port": hangs_after_greeting, "metrics_port": None}
    done, results, _ = run_probe(tmp_path / "hangs", python, server, ["keepalive", "health"],
                                  probe={"timeout_s": 1.0, "retries": 0}, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    first = {(e["check"], e["protocol"]): e for e in results["checks"] if e["model"] is None}
    for key in (("keepalive", "grpc"), ("health", "http")):
        e = first[key]
        assert e["status"] == "fail" and e["details"]["failure"] == "timeout", e
        assert 0.9 <= e["duration_s"] < 3, e
        assert "within 1 s" in e["message"], e
    e = first[("health", "grpc")]
    assert e["status"] == "fail" and "not answering since the keepalive check" in e["message"]


def _old_python(version: str) -> str:
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin",
                                               "python")), reverse=True)
    candidates.append(shutil.which(f"python{version}") or "")
    for c in candidates:
        if c and "/shims/" not in c and subprocess.run(
                [c, "-c", "pass"], capture_output=True, timeout=30).returncode == 0:
            return c
    unavailable(f"Python {version}", f"no Python {version} interpreter here (pyenv install "
                f"{version})")
    raise AssertionError("not reached")


@pytest.mark.parametrize("version", ["2.7", "3.6"])
def test_the_zip_tells_an_old_python_in_one_line_and_exits_2(
        version: str, tmp_path: Path) -> None:
    from hpctriton.render.zipapp import probe_zipapp

    python = _old_python(version)
    pyz = tmp_path / "probe.pyz"
    pyz.write_bytes(probe_zipapp())
    done = subprocess.run([python, str(pyz), "--spec", "spec.json", "--out", "results"],
                          capture_output=True, text=True, timeout=60, env=_env(),
                          cwd=str(tmp_path))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith(f"hpctriton probe needs Python 3.7 or newer; this is {version}")
    assert done.stderr.count("\n") == 1 and done.stderr.endswith("\n"), done.stderr
    assert not (tmp_path / "results").exists()


def test_the_probe_package_needs_nothing_newer_than_python_3_7() -> None:
    """vermin's static analysis: no syntax, module or function newer than 3.7 (schema.py's
    TypedDicts, read only by type checkers, are marked ``novermin``)."""
    vermin = shutil.which("vermin") or os.path.join(os.path.dirname(sys.executable), "vermin")
    if not os.path.exists(vermin):
        unavailable("vermin", "not installed (pip install vermin; it is in the test extra)")
    done = subprocess.run([vermin, "-t=3.7-", "--no-tips", "--violations",
                           str(REPO / "hpctriton_probe")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

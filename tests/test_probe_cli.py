"""The probe as a job runs it: ``python probe.pyz --spec spec.json --out results/``."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile

import pytest

import hpctriton_probe
from hpctriton.testing import TritonServer

pytestmark = pytest.mark.service

PROBE_DIR = os.path.dirname(hpctriton_probe.__file__)


@pytest.fixture(scope="module")
def probe_pyz(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The zipapp as the bundle ships it: the package plus ``_zipmain.py`` as
    ``__main__.py``, nothing else (so nothing but site-packages can satisfy imports)."""
    path = str(tmp_path_factory.mktemp("pyz") / "probe.pyz")
    with zipfile.ZipFile(path, "w") as zf:
        for src in sorted(glob.glob(os.path.join(PROBE_DIR, "**", "*.py"), recursive=True)):
            zf.write(src, os.path.relpath(src, os.path.dirname(PROBE_DIR)))
        zf.write(os.path.join(PROBE_DIR, "_zipmain.py"), "__main__.py")
    return path


def _write_spec(folder: str, server: TritonServer, models: list, checks: list,
                probe: dict | None = None) -> str:
    spec = {"schema_version": 1, "run_id": "cli-test", "tasks": [{
        "task": 0,
        "server": {"host": "127.0.0.1", "http_port": server.http_port,
                   "grpc_port": server.grpc_port, "metrics_port": server.metrics_port},
        "models": models,
        "checks": [{"name": c} if isinstance(c, str) else {"name": c[0], "options": c[1]}
                   for c in checks],
        "probe": probe or {"timeout_s": 10}}]}
    path = os.path.join(folder, "spec.json")
    with open(path, "w") as fh:
        json.dump(spec, fh)
    return path


def _env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the zip alone must be enough
    env.pop("SLURM_ARRAY_TASK_ID", None)
    return env


def test_zipapp_runs_the_default_suite_and_writes_every_file(
        triton: TritonServer, probe_pyz: str, tmp_path: object) -> None:
    folder = str(tmp_path)
    spec = _write_spec(folder, triton, ["simple"],
                       ["health", "metadata", "keepalive", "infer", "statistics", "metrics"])
    done = subprocess.run([sys.executable, probe_pyz, "--spec", spec, "--out", "results"],
                          cwd=folder, capture_output=True, text=True, timeout=120, env=_env())
    assert done.returncode == 0, done.stdout + done.stderr
    task_dir = os.path.join(folder, "results", "0")
    assert sorted(os.listdir(task_dir)) == ["junit.xml", "probe.log", "results.json"]
    with open(os.path.join(task_dir, "results.json")) as fh:
        results = json.load(fh)
    lines = done.stdout.splitlines()
    assert len(lines) == len(results["checks"]) + 1  # one per check, then the summary
    assert lines[0].startswith("PASS  health     http")
    assert lines[-1].startswith(f"ok: {len(results['checks'])} passed, 0 failed")
    assert results["run"]["run_id"] == "cli-test" and results["run"]["ended_at"]
    suite = ET.parse(os.path.join(task_dir, "junit.xml")).getroot().find("testsuite")
    assert suite.get("tests") == str(len(results["checks"])) and suite.get("failures") == "0"
    with open(os.path.join(task_dir, "probe.log")) as fh:
        log = fh.read()
    assert "hpctriton probe" in log and "PASS infer grpc simple" in log


def test_zipapp_exits_1_when_a_check_fails(triton: TritonServer, probe_pyz: str,
                                           tmp_path: object) -> None:
    spec = _write_spec(str(tmp_path), triton, ["no_such_model"], ["metadata"])
    done = subprocess.run([sys.executable, probe_pyz, "--spec", spec, "--out",
                           str(tmp_path), "--task", "0"], capture_output=True, text=True,
                          timeout=60, env=_env())
    assert done.returncode == 1
    assert "FAIL  metadata   http  no_such_model" in done.stdout
    assert "Request for unknown model" in done.stdout


@pytest.mark.parametrize("signals", [1, 3], ids=["one", "a burst (as Slurm sends)"])
def test_sigterm_mid_run_leaves_valid_partial_results(triton: TritonServer, probe_pyz: str,
                                                      tmp_path: object, signals: int) -> None:
    folder = str(tmp_path)
    spec = _write_spec(folder, triton, ["slow"], [
        "health", ("keepalive", {"calls": 3, "period_s": 60}), "infer"])
    results_path = os.path.join(folder, "results", "0", "results.json")
    proc = subprocess.Popen([sys.executable, probe_pyz, "--spec", spec, "--out", "results"],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # wait until health is recorded
            try:
                with open(results_path) as fh:
                    if len(json.load(fh)["checks"]) >= 4:
                        break
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        else:
            pytest.fail("the probe recorded no health results within 30 s")
        time.sleep(0.3)  # inside the keepalive check's wait between calls
        sent = time.monotonic()
        for _ in range(signals):  # Slurm signals the job script (which forwards) and the probe
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.01)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 143, out + err
    assert time.monotonic() - sent < 5
    with open(results_path) as fh:
        results = json.load(fh)
    assert results["run"]["interrupted"] is True
    assert results["run"]["interrupted_by"] == "SIGTERM" and results["run"]["ended_at"]
    assert [e["check"] for e in results["checks"]] == ["health"] * 4 + ["keepalive"]
    last = results["checks"][-1]
    assert (last["status"], last["message"]) == (
        "error", "interrupted by SIGTERM before this check finished")
    junit = ET.parse(os.path.join(folder, "results", "0", "junit.xml")).getroot()
    assert any(c.get("name") == "run interrupted" for c in junit.iter("testcase"))
    assert out.splitlines()[-1].startswith("interrupted: 4 passed")
    assert "Traceback" not in err


def test_zipapp_caches_compiled_code_beside_itself(triton: TritonServer, probe_pyz: str,
                                                   tmp_path: object) -> None:
    folder = str(tmp_path)
    pyz = os.path.join(folder, "probe.pyz")
    with open(probe_pyz, "rb") as src, open(pyz, "wb") as dst:
        dst.write(src.read())
    spec = _write_spec(folder, triton, ["simple"], ["health"])
    argv = [sys.executable, pyz, "--spec", spec, "--out", "results", "--quiet"]
    off = subprocess.run(argv, cwd=folder, env={**_env(), "HPCTRITON_PROBE_CACHE": "off"},
                         capture_output=True, text=True, timeout=60)
    assert off.returncode == 0 and not os.path.exists(os.path.join(folder, ".probe-cache"))
    for _ in range(2):  # the first run fills the cache, the second uses it
        done = subprocess.run(argv, cwd=folder, env=_env(), capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
    (digest,) = os.listdir(os.path.join(folder, ".probe-cache"))
    cached = os.path.join(folder, ".probe-cache", digest, "hpctriton_probe")
    tag = sys.implementation.cache_tag
    assert os.path.isfile(os.path.join(cached, "__pycache__", f"runner.{tag}.pyc"))
    assert os.path.isfile(os.path.join(cached, "checks", "__pycache__", f"infer.{tag}.pyc"))


def _spec_with_header(folder: str, server: TritonServer, value: str) -> str:
    path = _write_spec(folder, server, ["simple"],
                       ["health", "metadata", "infer", "metrics"])
    with open(path) as fh:
        spec = json.load(fh)
    spec["tasks"][0]["server"]["headers"] = {"Authorization": value}
    with open(path, "w") as fh:
        json.dump(spec, fh)
    return path


def _everything_written(folder: str, done: subprocess.CompletedProcess) -> str:
    texts = [done.stdout, done.stderr]
    for name in glob.glob(os.path.join(folder, "**", "*"), recursive=True):
        if os.path.isfile(name) and not name.endswith(".pyz"):
            with open(name, errors="replace") as fh:
                texts.append(fh.read())
    return "\n".join(texts)


def test_a_token_with_a_trailing_newline_is_sent_trimmed_and_never_written(
        triton: TritonServer, probe_pyz: str, tmp_path: object) -> None:
    """Issue 18: "invalid value for header field 'Authorization': 'Bearer SECRET123\\n'"
    went into the message, results.json and junit.xml."""
    folder = str(tmp_path)
    spec = _spec_with_header(folder, triton, "Bearer ${HPCT_TEST_TOKEN}")
    done = subprocess.run([sys.executable, probe_pyz, "--spec", spec, "--out", "results"],
                          cwd=folder, capture_output=True, text=True, timeout=120,
                          env={**_env(), "HPCT_TEST_TOKEN": "SECRET123\n"})
    assert done.returncode == 0, done.stdout + done.stderr
    written = _everything_written(folder, done)
    assert "SECRET123" not in written
    with open(os.path.join(folder, "results", "0", "probe.log")) as fh:
        assert "server.headers.Authorization: white space" in fh.read()


def test_a_header_value_with_a_line_inside_is_refused_by_name_only(
        triton: TritonServer, probe_pyz: str, tmp_path: object) -> None:
    folder = str(tmp_path)
    spec = _spec_with_header(folder, triton, "Bearer ${HPCT_TEST_TOKEN}")
    done = subprocess.run([sys.executable, probe_pyz, "--spec", spec, "--out", "results"],
                          cwd=folder, capture_output=True, text=True, timeout=120,
                          env={**_env(), "HPCT_TEST_TOKEN": "SECRET\n123"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "server.headers.Authorization: its value holds a control character" in done.stderr
    written = _everything_written(folder, done)
    assert "SECRET" not in written and "Traceback" not in done.stderr


@pytest.mark.parametrize("where", ["spec", "environment"])
def test_a_header_value_beyond_ascii_is_refused_by_name_only(
        triton: TritonServer, probe_pyz: str, tmp_path: object, where: str) -> None:
    """Issue 18: ``abé☃`` went to the clients, whose errors quoted it into the message,
    results.json and junit.xml (and the metrics scrape died of UnicodeEncodeError).
    Refused after ``${VAR}`` expansion too, naming the header only."""
    folder = str(tmp_path)
    value = "Bearer ${HPCT_TEST_TOKEN}" if where == "environment" else "ab\u00e9\u2603"
    spec = _spec_with_header(folder, triton, value)
    done = subprocess.run([sys.executable, probe_pyz, "--spec", spec, "--out", "results"],
                          cwd=folder, capture_output=True, text=True, timeout=120,
                          env={**_env(), "HPCT_TEST_TOKEN": "ab\u00e9\u2603"})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "server.headers.Authorization: its value holds a character beyond ASCII" in (
        done.stderr)
    os.remove(spec)  # holds the value by design: the probe's input, not its output
    written = _everything_written(folder, done)
    assert not any(c in written for c in ("\u00e9", "\u2603", "\\u00e9", "\\u2603"))
    assert "Traceback" not in done.stderr

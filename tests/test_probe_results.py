"""The probe without a server: results files, JUnit XML, headers, failure kinds,
retries, the command line's exit codes, and what it may import."""

from __future__ import annotations

import ast
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

import hpctriton_probe
from hpctriton_probe import cli, results
from hpctriton_probe.junit import results_to_junit
from hpctriton_probe.net.calls import Caller, CallFailure, classify
from hpctriton_probe.net.clients import Clients, expand_headers
from hpctriton_probe.spec import ServerSpec, SpecError

PROBE_DIR = os.path.dirname(hpctriton_probe.__file__)
REPO = os.path.dirname(PROBE_DIR)


def _doc(*entries: dict, interrupted: bool = False) -> dict:
    doc = results.new_results("run-1", 3, environ={"SLURM_JOB_ID": "77_3"})
    doc["run"]["interrupted"] = interrupted
    doc["checks"] = list(entries)
    return doc


def _entry(check: str, status: str, model: str | None = None, message: str = "m") -> dict:
    return {"check": check, "protocol": "grpc", "model": model, "status": status,
            "duration_s": 0.5, "message": message, "details": {"k": 1}}


# ----------------------------------------------------------------------------- results


def test_results_document_names_the_run_and_counts_statuses() -> None:
    doc = _doc(_entry("health", "pass"), _entry("infer", "fail", "simple"),
               _entry("metrics", "skip"))
    assert doc["run"]["job_id"] == "77_3" and doc["run"]["task"] == 3
    assert doc["run"]["versions"]["probe"] == hpctriton_probe.__version__
    assert results.summarize(doc["checks"]) == {"pass": 1, "fail": 1, "error": 0, "skip": 1,
                                                "total": 3, "ok": False}
    assert results.exit_code(doc) == 1
    assert results.exit_code(_doc(_entry("metrics", "skip"))) == 0
    assert results.exit_code(_doc(interrupted=True)) == 143


def test_results_are_replaced_atomically_and_no_temp_file_is_left(tmp_path: object,
                                                                  monkeypatch: object) -> None:
    writer = results.ResultsWriter(str(tmp_path))
    writer.write(_doc(_entry("health", "pass")))
    with open(writer.path) as fh:
        before = fh.read()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(results.os, "replace", broken_replace)  # type: ignore[attr-defined]
    with pytest.raises(OSError):
        writer.write(_doc(_entry("health", "fail")))
    with open(writer.path) as fh:
        assert fh.read() == before
    assert os.listdir(str(tmp_path)) == ["results.json"]
    assert oct(os.stat(writer.path).st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_sigterm_during_a_write_is_held_until_the_file_is_complete() -> None:
    busy = {"now": True}
    guard = results.SigtermGuard(busy=lambda: busy["now"])
    guard._handler(15, None)  # arrives mid-write: remembered, not raised
    busy["now"] = False
    with pytest.raises(results.Interrupted) as info:
        guard.check_pending()
    assert info.value.code == 143


# ------------------------------------------------------------------------------- junit


def test_junit_has_one_testcase_per_entry_with_failure_error_and_skip() -> None:
    doc = _doc(_entry("health", "pass", message="server live"),
               _entry("infer", "fail", "simple", "output OUTPUT0: 1 of 16 values differ"),
               _entry("metadata", "error", "x", "bad \x01 control"),
               _entry("metrics", "skip", message="no server.metrics_port"))
    root = ET.fromstring(results_to_junit(doc))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("4", "1", "1", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["health[grpc]", "infer[grpc] simple",
                                              "metadata[grpc] x", "metrics[grpc]"]
    assert cases[1].find("failure").get("message") == "output OUTPUT0: 1 of 16 values differ"
    assert cases[2].find("error").get("message") == "bad  control"
    assert cases[3].find("skipped") is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["run_id"] == "run-1" and props["interrupted"] == "false"


def test_junit_marks_an_interrupted_run_and_merges_several_tasks() -> None:
    xml = results_to_junit([_doc(_entry("health", "pass")), _doc(interrupted=True)])
    root = ET.fromstring(xml)
    assert len(root.findall("testsuite")) == 2
    assert root.get("tests") == "2" and root.get("errors") == "1"
    assert "interrupted" in xml


# ---------------------------------------------------------------- headers, TLS, failures


def test_headers_expand_environment_variables_at_run_time() -> None:
    out = expand_headers({"Authorization": "Bearer ${TOKEN}", "x": "plain $NOTVAR"},
                         {"TOKEN": "abc"})
    assert out == {"Authorization": "Bearer abc", "x": "plain $NOTVAR"}


def test_a_missing_header_variable_is_a_clear_spec_error() -> None:
    with pytest.raises(SpecError, match="TRITON_TOKEN is not set"):
        expand_headers({"Authorization": "Bearer ${TRITON_TOKEN}"}, {})


def test_grpc_header_names_are_lower_case() -> None:
    clients = Clients(ServerSpec(host="h", grpc_port=1), headers={"X-Key": "v"})
    assert clients.headers_for("grpc") == {"x-key": "v"}
    assert clients.headers_for("http") == {"X-Key": "v"}


def test_missing_tls_files_are_named() -> None:
    from hpctriton_probe.spec import TLSSpec

    clients = Clients(ServerSpec(host="h", http_port=1, tls=TLSSpec(ca="nope.pem")),
                      base_dir="/bundle")
    with pytest.raises(FileNotFoundError, match="server.tls.ca: file /bundle/nope.pem"):
        clients.check_tls_files()


def test_failures_are_classified_by_what_the_server_did() -> None:
    from tritonclient.utils import InferenceServerException

    assert classify(ConnectionRefusedError(111, "refused"))[0] == "refused"
    assert classify(TimeoutError("timed out"))[0] == "timeout"  # socket.timeout on 3.8
    assert classify(socket.gaierror(-2, "unknown"))[0] == "unreachable"
    refused = InferenceServerException(
        "failed to connect to all addresses; Connection refused", status="StatusCode.UNAVAILABLE")
    assert classify(refused)[0] == "refused"
    assert classify(InferenceServerException("Deadline Exceeded",
                                             status="StatusCode.DEADLINE_EXCEEDED"))[0] == "timeout"
    kind, message, status = classify(InferenceServerException(
        "Request for unknown model: 'x' is not found", status="404"))
    assert (kind, message, status) == ("server", "Request for unknown model: 'x' is not found",
                                       "404")
    assert classify(ValueError("bug"))[0] == "probe"


def test_refusals_are_retried_with_backoff_then_not_again_in_the_same_run() -> None:
    waits = []
    caller = Caller(retries=3, backoff_s=0.5, sleep=waits.append)
    calls = {"n": 0}

    def refuse() -> None:
        calls["n"] += 1
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(CallFailure) as info:
        caller.call("grpc://h:1", refuse, what="live", timeout_s=1)
    assert info.value.kind == "refused" and info.value.status == "fail"
    assert waits == [0.5, 1.0, 2.0] and calls["n"] == 4
    assert "4 attempts" in info.value.message
    with pytest.raises(CallFailure):
        caller.call("grpc://h:1", refuse, what="ready", timeout_s=1)
    assert calls["n"] == 5 and len(waits) == 3


def test_a_server_that_comes_up_during_the_retries_passes() -> None:
    caller = Caller(retries=2, backoff_s=0.01, sleep=lambda s: None)
    answers = iter([ConnectionRefusedError(111, "refused"), True])

    def starting() -> bool:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert caller.call("http://h:1", starting, what="live", timeout_s=1) is True


def test_timeouts_are_not_retried() -> None:
    caller = Caller(retries=5, backoff_s=0.01, sleep=lambda s: pytest.fail("retried"))

    def silent() -> None:
        raise TimeoutError("timed out")

    with pytest.raises(CallFailure, match=r"no answer from http://h:1 within 2 s \(live\)"):
        caller.call("http://h:1", silent, what="live", timeout_s=2)


# ----------------------------------------------------------------------- command line


def _spec(tmp_path: object, **task: object) -> str:
    data = {"schema_version": 1, "run_id": "r", "tasks": [{
        "task": 0, "server": {"host": "127.0.0.1", "http_port": 1}, "models": ["simple"],
        "checks": [{"name": "health"}], **task}]}
    path = os.path.join(str(tmp_path), "spec.json")
    with open(path, "w") as fh:
        json.dump(data, fh)
    return path


def test_cli_exits_2_on_a_bad_spec(tmp_path: object, capsys: object) -> None:
    path = _spec(tmp_path, checks=[{"name": "nonsense"}])
    assert cli.main(["--spec", path, "--out", str(tmp_path)]) == 2
    assert "unknown check 'nonsense'" in capsys.readouterr().err  # type: ignore[attr-defined]


def test_cli_exits_2_for_a_task_not_in_the_spec(tmp_path: object, capsys: object) -> None:
    assert cli.main(["--spec", _spec(tmp_path), "--out", str(tmp_path), "--task", "4"]) == 2
    assert "task 4 is not in spec.json" in capsys.readouterr().err  # type: ignore[attr-defined]


def test_cli_exits_2_on_bad_arguments(capsys: object) -> None:
    assert cli.main(["--out", "x"]) == 2


def test_cli_without_tritonclient_says_how_to_install_it(tmp_path: object, capsys: object,
                                                         monkeypatch: object) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # type: ignore[attr-defined]
                        lambda name, *a: None if name == "tritonclient" else real(name, *a))
    assert cli.main(["--spec", _spec(tmp_path), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert "pip install 'tritonclient[http,grpc]'" in err and err.count("\n") == 1


def test_cli_with_an_unset_header_variable_exits_2(tmp_path: object, capsys: object,
                                                   monkeypatch: object) -> None:
    monkeypatch.delenv("HPCTRITON_TEST_UNSET", raising=False)  # type: ignore[attr-defined]
    path = _spec(tmp_path, server={"host": "127.0.0.1", "http_port": 1,
                                   "headers": {"Authorization": "${HPCTRITON_TEST_UNSET}"}})
    assert cli.main(["--spec", path, "--out", str(tmp_path)]) == 2
    assert "HPCTRITON_TEST_UNSET is not set" in capsys.readouterr().err  # type: ignore


def test_cli_junit_only_rewrites_junit_from_results(tmp_path: object) -> None:
    task_dir = os.path.join(str(tmp_path), "0")
    results.ResultsWriter(task_dir).write(_doc(_entry("health", "fail")))
    assert cli.main(["--spec", "unused", "--out", str(tmp_path), "--junit-only"]) == 1
    assert ET.parse(os.path.join(task_dir, "junit.xml")).getroot().get("failures") == "1"


# ------------------------------------------------------------------ what it may import


def _probe_files() -> list:
    return sorted(glob.glob(os.path.join(PROBE_DIR, "**", "*.py"), recursive=True))


def test_probe_sources_parse_as_python_3_8() -> None:
    for path in _probe_files():
        with open(path) as fh:
            ast.parse(fh.read(), path, feature_version=(3, 8))


def test_importing_the_probe_imports_nothing_but_the_standard_library() -> None:
    code = ("import sys, hpctriton_probe.cli, hpctriton_probe.runner, hpctriton_probe.junit, "
            "hpctriton_probe.load.inputs, hpctriton_probe.net.prom, hpctriton_probe.checks\n"
            "from hpctriton_probe import checks, spec\n"
            "[checks.by_name(n) for n in spec.CHECK_OPTIONS]\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'tritonclient', 'grpc', 'gevent', 'geventhttpclient', 'hpctriton'))\n"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO}, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("version", ["2.7", "3.6"])
def test_zip_main_tells_an_old_python_to_pick_another_interpreter(version: str) -> None:
    candidates = sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}.*/bin/python")))
    candidates.append(shutil.which(f"python{version}") or "")
    python = next((c for c in candidates if c and subprocess.run(
        [c, "-c", "pass"], capture_output=True, timeout=30).returncode == 0), None)
    if python is None:
        pytest.skip(f"no working Python {version} here")
    done = subprocess.run([python, os.path.join(PROBE_DIR, "_zipmain.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(f"hpctriton probe needs Python 3.7 or newer; this is {version}")
    assert done.stderr.count("\n") == 1


def test_header_values_are_hidden_in_entries_details_and_log_records() -> None:
    """The second line of defence behind expand_headers: whatever a client library puts
    in an exception (the value, its repr, the token alone) never reaches what is written."""
    import logging

    from hpctriton_probe import redact

    redact.hide(["Bearer SECRET123\n"])
    try:
        text = ("invalid value for header field 'Authorization': 'Bearer SECRET123\\n'; "
                "b'Bearer SECRET123\\n'; token SECRET123")
        assert "SECRET123" not in redact.redact(text)
        assert redact.redact_data({"details": ["Bearer SECRET123"], "n": 1}) == {
            "details": [redact.HIDDEN], "n": 1}
        record = logging.LogRecord("hpctriton_probe", logging.ERROR, __file__, 1,
                                   "failed: %s", ("Bearer SECRET123",), None)
        try:
            raise ValueError("header 'Bearer SECRET123'")
        except ValueError:
            import sys

            record.exc_info = sys.exc_info()
        assert redact.RedactingFilter().filter(record)
        formatted = logging.Formatter().format(record)
        assert "SECRET123" not in formatted and "ValueError" in formatted
    finally:
        redact.forget()


def test_values_a_client_error_quotes_are_hidden_whatever_their_length() -> None:
    """Issue 18: values under 6 characters went through. A quoted value in a client's
    header error is hidden whatever its length (registered or not); a registered value
    of 4 or 5 characters wherever it stands alone; shorter ones nowhere else, so that
    ``x-debug: 1`` does not hide every 1."""
    from hpctriton_probe import redact

    redact.hide(["ab", "gzip", "1"])
    try:
        assert redact.redact("invalid value for header field 'x-bad': 'ab\\n'; next") == (
            "invalid value for header field 'x-bad': <hidden>; next")
        assert redact.redact("Invalid header value b'a\\nb'") == "Invalid header value <hidden>"
        assert redact.redact("can't encode character '\\u2603' in position 3") == (
            "can't encode character <hidden> in position 3")
        assert redact.redact("sent 'gzip' and gzip; gzipped 10 of 1 abc") == (
            "sent '<hidden>' and <hidden>; gzipped 10 of 1 abc")
    finally:
        redact.forget()
    assert redact.redact("invalid value for header field 'x': 'v'") == (
        "invalid value for header field 'x': 'v'")  # no headers, nothing hidden


def test_first_contact_finds_only_endpoints_that_answer_nothing(
        silent_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked all at once: the silent one within its timeout; refused is not silent (the
    checks retry it); endpoints a proxy from the environment would carry are not asked."""
    import threading

    from hpctriton.testing import free_port
    from hpctriton_probe.net.contact import Target, first_contact

    answering = socket.socket()
    answering.bind(("127.0.0.1", 0))
    answering.listen(4)
    port = answering.getsockname()[1]

    def answer() -> None:
        conn = answering.accept()[0]
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    targets = [Target("http://silent", "http", "127.0.0.1", silent_port, 1.0),
               Target("grpc://silent", "grpc", "127.0.0.1", silent_port, 1.5),
               Target("http://refused", "http", "127.0.0.1", free_port(), 1.0),
               Target("http://answers", "http", "127.0.0.1", port, 1.0)]
    started = time.monotonic()
    found = first_contact(targets)
    assert time.monotonic() - started < 2.5  # at once, not one after another
    assert {e: o.silent for e, o in found.items()} == {
        "http://silent": True, "grpc://silent": True, "http://refused": False,
        "http://answers": False}
    assert found["http://refused"].detail == "refused"
    answering.close()
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert set(first_contact(targets[:2])) == {"http://silent"}  # gRPC would use the proxy

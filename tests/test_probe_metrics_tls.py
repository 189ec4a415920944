"""Issue 12: Triton's metrics port speaks plain HTTP only. Where the server is reached
over TLS, the configured headers (a token) must never go there in clear text: not
from the metrics check, not from the load check's own scrapes of the counters. Both
scrape through one path (``CheckContext.scrape_metrics``), with the metrics check's
``path``.

The metrics port here is a plain-HTTP listener that records what it receives and
answers with the real Triton's page."""

from __future__ import annotations

import http.server
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from fixtures_triton import TLSFiles, probe_task

from hpctriton.testing import TritonServer
from hpctriton_probe.runner import run_task

pytestmark = pytest.mark.service

TOKEN = "Bearer metrics-tls-SECRET-7f3a9c"
PATH = "/custom/metrics"
FAST_LOAD = {"concurrency": [1], "warmup_s": 0.2, "window_s": 0.3,
             "stability": {"windows": 2, "percent": 80, "max_trials": 3}}


class Recorder:
    """A plain-HTTP metrics port that records each request's path and headers."""

    def __init__(self, upstream: str) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        recorder = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                recorder.seen.append((self.path, {k.lower(): v for k, v in
                                                  self.headers.items()}))
                with urllib.request.urlopen(f"http://{upstream}/metrics", timeout=10) as r:
                    body = r.read()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def recorder(triton_tls: TritonServer) -> Iterator[Recorder]:
    rec = Recorder(triton_tls.metrics_url)
    yield rec
    rec.close()


def _run(triton: TritonServer, recorder: Recorder, protocol: str,
         tls: dict | None) -> dict[str, Any]:
    checks = [("metrics", {"path": PATH}), ("load", {**FAST_LOAD, "protocol": protocol})]
    task = probe_task(triton, checks=checks, metrics_port=recorder.port, tls=tls,
                      headers={"Authorization": TOKEN})
    return run_task(task)


def _scrapes(recorder: Recorder) -> list[tuple[str, dict[str, str]]]:
    """The scrapes (``prom.fetch``), without the runner's first contact (a bare GET)."""
    return [(p, h) for p, h in recorder.seen if "urllib" in h.get("user-agent", "")]


def _load_entry(results: dict[str, Any]) -> dict[str, Any]:
    entries = [e for e in results["checks"] if e["check"] == "load" and e["model"]]
    assert entries and entries[0]["status"] == "pass", [e["message"] for e in entries]
    return entries[0]


def test_the_token_stays_off_plain_http_metrics_when_tls_is_set(
        triton_tls: TritonServer, tls_files: TLSFiles, recorder: Recorder) -> None:
    results = _run(triton_tls, recorder, "grpc", {"ca": tls_files.ca})
    metrics = [e for e in results["checks"] if e["check"] == "metrics"]
    assert {e["status"] for e in metrics} == {"pass"}, [e["message"] for e in metrics]
    load = _load_entry(results)
    # the load's own scrapes before and after its point answered (counters, no error)
    assert "metrics" in load["details"]["server"], load["details"]["server"]
    # metrics' snapshot and scrape, the load's before and after: every one of them here
    assert len(_scrapes(recorder)) >= 4, recorder.seen
    assert all(path == PATH for path, _ in recorder.seen), recorder.seen
    assert not [h for _, h in recorder.seen if "authorization" in h], recorder.seen


def test_without_tls_the_headers_do_go_to_the_metrics_port(
        triton_tls: TritonServer, recorder: Recorder) -> None:
    """The control: the same recorder sees the header when nothing is encrypted anyway
    (so the test above can see one if it were sent)."""
    results = _run(triton_tls, recorder, "http", None)  # plain HTTP: its gRPC is TLS
    _load_entry(results)
    scrapes = _scrapes(recorder)
    assert len(scrapes) >= 4, recorder.seen
    assert all(path == PATH for path, _ in recorder.seen), recorder.seen
    assert all(h.get("authorization") == TOKEN for _, h in scrapes), recorder.seen

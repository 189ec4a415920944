"""The load check in every environment of the compat matrix (old Pythons, old
tritonclients, protobuf 3): its HTTP/2 gRPC client (unary and streams, over mutual TLS
too), its HTTP client, and worker processes, which start the same interpreter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_triton import TLSFiles
from test_portability import compat, run_probe, server_of  # noqa: F401 - the fixture

from hpctriton.testing import TritonServer
from hpctriton.tools.compat import CompatTarget

pytestmark = pytest.mark.service

FAST = {"warmup_s": 0.1, "window_s": 0.2, "stability": {"windows": 2, "percent": 50,
                                                         "max_trials": 3}}


def _points(results: dict) -> list[dict]:
    return [e for e in results["checks"] if e["check"] == "load" and e["model"]]


def test_load_runs_in_every_environment(triton: TritonServer, triton_mtls: TritonServer,
                                        tls_files: TLSFiles, tmp_path: Path,
                                        compat: tuple[CompatTarget, str]) -> None:  # noqa: F811
    entry, python = compat
    runs = {"grpc-stream-workers": {"protocol": "grpc", "streaming": True,
                                    "request_rate": [100], "workers": 2},
            "http-workers": {"protocol": "http", "concurrency": [3], "workers": 2}}
    for name, options in runs.items():
        done, results, log = run_probe(tmp_path / name, python, server_of(triton),
                                        [{"load": {**FAST, **options}}], models=["simple"])
        assert results is not None, done.stdout + done.stderr
        got = _points(results)
        bad = [e for e in got if e["status"] != "pass" or not e["details"].get("counts_match")]
        assert got and not bad, f"{entry.name}, {name}:\n" + json.dumps(results["checks"],
                                                                        indent=1)
        assert got[0]["details"]["client"]["workers"] == options.get("workers", 1)
    tls = {"host": "127.0.0.1", "grpc_port": triton_mtls.grpc_port,
           "tls": {"ca": tls_files.ca, "cert": tls_files.client_cert,
                   "key": tls_files.client_key}}
    done, results, log = run_probe(tmp_path / "mtls", python, tls, [  # unary over mTLS
        {"load": {**FAST, "protocol": "grpc", "concurrency": [2]}}], models=["simple"])
    assert results is not None, done.stdout + done.stderr
    got = _points(results)
    assert got and all(e["status"] == "pass" for e in got), json.dumps(got, indent=1)
    assert got[0]["details"]["totals"]["ok"] > 0

"""TLS and headers for real: gRPC over TLS (also mutual), HTTPS through nginx, and
Triton's restricted APIs proving that the configured headers are sent."""

from __future__ import annotations

import pytest
from fixtures_triton import (
    RESTRICTED_KEY,
    RESTRICTED_VALUE,
    HTTPSProxy,
    TLSFiles,
    probe_task,
)

from hpctriton.testing import TritonServer
from hpctriton_probe.runner import run_task

pytestmark = pytest.mark.service

GRPC_CHECKS = [("health", {"protocols": ["grpc"]}), ("metadata", {"protocols": ["grpc"]}),
               "keepalive", ("infer", {"protocols": ["grpc"]}),
               ("statistics", {"protocols": ["grpc"]})]
HTTP_CHECKS = [("health", {"protocols": ["http"]}), ("metadata", {"protocols": ["http"]}),
               ("infer", {"protocols": ["http"]}), ("statistics", {"protocols": ["http"]})]
FAST = {"timeout_s": 5, "retries": 0}


def _statuses(results: dict) -> list:
    return [(e["check"], e["model"], e["status"]) for e in results["checks"]]


def test_grpc_over_tls_passes_with_the_servers_ca(triton_tls: TritonServer,
                                                  tls_files: TLSFiles) -> None:
    task = probe_task(grpc_port=triton_tls.grpc_port, checks=GRPC_CHECKS,
                      tls={"ca": tls_files.ca})
    results = run_task(task)
    assert all(e["status"] == "pass" for e in results["checks"]), _statuses(results)
    assert len(results["checks"]) == 7


def test_grpc_over_tls_fails_with_another_ca(triton_tls: TritonServer,
                                             tls_files: TLSFiles) -> None:
    task = probe_task(grpc_port=triton_tls.grpc_port, checks=[("health", {"protocols": ["grpc"]})],
                      tls={"ca": tls_files.other_ca}, probe=FAST)
    first = run_task(task)["checks"][0]
    assert first["status"] == "fail"
    assert first["details"]["failure"] in ("tls", "unreachable")


def test_plain_grpc_against_a_tls_server_fails_instead_of_hanging(
        triton_tls: TritonServer) -> None:
    task = probe_task(grpc_port=triton_tls.grpc_port, checks=[("health", {"protocols": ["grpc"]})],
                      probe={"timeout_s": 3, "retries": 0})
    results = run_task(task)
    assert {e["status"] for e in results["checks"]} == {"fail"}
    assert results["run"]["duration_s"] < 8


def test_mutual_tls_sends_the_client_certificate(triton_mtls: TritonServer,
                                                 tls_files: TLSFiles) -> None:
    checks = [("health", {"protocols": ["grpc"]}), ("infer", {"protocols": ["grpc"]})]
    with_cert = run_task(probe_task(grpc_port=triton_mtls.grpc_port, checks=checks, tls={
        "ca": tls_files.ca, "cert": tls_files.client_cert, "key": tls_files.client_key}))
    assert all(e["status"] == "pass" for e in with_cert["checks"]), _statuses(with_cert)
    without = run_task(probe_task(grpc_port=triton_mtls.grpc_port, checks=checks,
                                  tls={"ca": tls_files.ca}, probe=FAST))
    assert {e["status"] for e in without["checks"]} == {"fail"}


def test_https_through_nginx_passes_with_the_ca(https_proxy: HTTPSProxy) -> None:
    task = probe_task(http_port=https_proxy.port, checks=HTTP_CHECKS,
                      tls={"ca": https_proxy.ca})
    results = run_task(task)
    assert all(e["status"] == "pass" for e in results["checks"]), _statuses(results)
    assert results["run"]["server"]["tls"] is True


def test_https_with_an_unknown_ca_fails_with_a_tls_error(https_proxy: HTTPSProxy,
                                                         tls_files: TLSFiles) -> None:
    task = probe_task(http_port=https_proxy.port, checks=[("health", {"protocols": ["http"]})],
                      tls={"ca": tls_files.other_ca}, probe=FAST)
    first = run_task(task)["checks"][0]
    assert first["status"] == "fail" and first["details"]["failure"] == "tls"
    assert "CERTIFICATE_VERIFY_FAILED" in first["message"]


def test_https_without_verification_accepts_any_certificate(https_proxy: HTTPSProxy,
                                                            tls_files: TLSFiles) -> None:
    task = probe_task(http_port=https_proxy.port, checks=[("health", {"protocols": ["http"]})],
                      tls={"ca": tls_files.other_ca, "verify": False})
    assert all(e["status"] == "pass" for e in run_task(task)["checks"])


def test_missing_tls_file_is_an_error_of_the_probe(https_proxy: HTTPSProxy) -> None:
    task = probe_task(http_port=https_proxy.port, checks=[("health", {"protocols": ["http"]})],
                      tls={"ca": "no/such/ca.pem"})
    first = run_task(task, base_dir="/nonexistent")["checks"][0]
    assert first["status"] == "error"
    assert "server.tls.ca: file /nonexistent/no/such/ca.pem does not exist" in first["message"]


RESTRICTED_CHECKS = ["health", "metadata", "infer", "statistics"]


def test_restricted_apis_refuse_a_probe_without_the_header(
        triton_restricted: TritonServer) -> None:
    results = run_task(probe_task(triton_restricted, checks=RESTRICTED_CHECKS, probe=FAST))
    assert {e["status"] for e in results["checks"]} == {"fail"}, _statuses(results)
    by = {(e["check"], e["protocol"], e["model"]): e for e in results["checks"]}
    assert by[("metadata", "http", None)]["details"]["status_code"] == "403"
    assert "restricted" in by[("metadata", "grpc", None)]["message"]
    assert f"triton-grpc-protocol-{RESTRICTED_KEY}" in by[("metadata", "grpc", None)]["message"]


def test_configured_headers_are_sent_over_http_and_grpc(triton_restricted: TritonServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPCTRITON_TEST_KEY", RESTRICTED_VALUE)
    headers = {RESTRICTED_KEY: "${HPCTRITON_TEST_KEY}",
               f"triton-grpc-protocol-{RESTRICTED_KEY}": "${HPCTRITON_TEST_KEY}"}
    results = run_task(probe_task(triton_restricted, checks=RESTRICTED_CHECKS,
                                  headers=headers))
    assert all(e["status"] == "pass" for e in results["checks"]), _statuses(results)
    assert len(results["checks"]) == 12

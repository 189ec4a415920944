"""Parity with Triton's example clients that the seed's test.sh runs
(``simple_http_health_metadata.py``, ``simple_grpc_keepalive_client.py``): everything
they check, the probe checks too, and it sees the same answers."""

from __future__ import annotations

import os

import numpy as np
import pytest
from fixtures_triton import probe_task

from hpctriton.testing import TritonServer
from hpctriton_probe.runner import run_task

pytestmark = pytest.mark.service

DATA = os.path.join(os.path.dirname(__file__), "data")
# simple_grpc_keepalive_client.py's defaults: keepalive time INT32_MAX ms (disabled),
# timeout 20 s, no pings without calls, at most 2 pings without data.
EXAMPLE_KEEPALIVE = {"keepalive_time_s": (2**31 - 1) / 1000, "keepalive_timeout_s": 20,
                     "permit_without_calls": False, "max_pings_without_data": 2}


@pytest.fixture(scope="module")
def probe_results(triton: TritonServer) -> dict:
    task = probe_task(triton, models=["simple"], checks=[
        "health", "metadata", ("keepalive", EXAMPLE_KEEPALIVE),
        ("infer", {"input_data": "simple_input_data.json",
                   "expected_outputs": "simple_expected.json"})])
    results = run_task(task, base_dir=DATA)
    return {(e["check"], e["protocol"], e["model"]): e for e in results["checks"]}


def test_live_ready_and_model_ready_match_the_http_example(triton: TritonServer,
                                                           probe_results: dict) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(triton.http_url)
    server = probe_results[("health", "http", None)]
    assert server["status"] == "pass"
    assert server["details"]["live"] == client.is_server_live() is True
    assert server["details"]["ready"] == client.is_server_ready() is True
    model = probe_results[("health", "http", "simple")]
    assert model["details"]["ready"] == client.is_model_ready("simple") is True


def test_server_and_model_metadata_match_the_http_example(triton: TritonServer,
                                                          probe_results: dict) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(triton.http_url)
    expected = client.get_server_metadata()
    server = probe_results[("metadata", "http", None)]["details"]
    assert server["name"] == expected["name"] == "triton"
    assert (server["version"], server["extensions"]) == (expected["version"],
                                                         expected["extensions"])
    meta = client.get_model_metadata("simple")
    model = probe_results[("metadata", "http", "simple")]["details"]
    assert model["name"] == meta["name"] == "simple"
    assert model["inputs"] == meta["inputs"] and model["outputs"] == meta["outputs"]
    config = client.get_model_config("simple")
    assert model["config"]["max_batch_size"] == config["max_batch_size"] == 8


def test_the_examples_wrong_model_name_check_fails_the_same_way(triton: TritonServer) -> None:
    results = run_task(probe_task(triton, models=["wrong_model_name"], checks=["metadata"]))
    entry = [e for e in results["checks"] if e["model"] == "wrong_model_name"][0]
    assert entry["status"] == "fail" and "Request for unknown model" in entry["message"]


def test_keepalive_channel_uses_the_grpc_examples_settings(probe_results: dict) -> None:
    entry = probe_results[("keepalive", "grpc", None)]
    assert entry["status"] == "pass" and entry["details"]["healthy"]
    assert entry["details"]["settings"] == {
        "keepalive_time_ms": 2**31 - 1, "keepalive_timeout_ms": 20000,
        "keepalive_permit_without_calls": False, "http2_max_pings_without_data": 2}


def test_inference_values_are_checked_like_the_grpc_example(triton: TritonServer,
                                                            probe_results: dict) -> None:
    import tritonclient.grpc as grpcclient

    # What the example does: INPUT0 = 0..15, INPUT1 = ones, sum and difference checked.
    input0 = np.arange(16, dtype=np.int32)[None, :]
    input1 = np.ones((1, 16), dtype=np.int32)
    client = grpcclient.InferenceServerClient(triton.grpc_url)
    inputs = [grpcclient.InferInput("INPUT0", [1, 16], "INT32"),
              grpcclient.InferInput("INPUT1", [1, 16], "INT32")]
    inputs[0].set_data_from_numpy(input0)
    inputs[1].set_data_from_numpy(input1)
    result = client.infer("simple", inputs)
    assert (result.as_numpy("OUTPUT0") == input0 + input1).all()
    for protocol in ("http", "grpc"):
        entry = probe_results[("infer", protocol, "simple")]
        assert entry["status"] == "pass"
        compared = {c["output"]: c for c in entry["details"]["compared"]}
        assert compared["OUTPUT0"] == {"output": "OUTPUT0", "elements": 16, "mismatches": 0,
                                       "status": "match"}
        assert compared["OUTPUT1"]["status"] == "match"
        previews = {o["name"]: o["preview"] for o in entry["details"]["outputs"]}
        assert previews["OUTPUT0"] == (input0 + input1)[0, :8].tolist()
        assert previews["OUTPUT1"] == (input0 - input1)[0, :8].tolist()

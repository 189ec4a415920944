"""Locust peer for ``bench_load.py``: a ``FastHttpUser`` posting v2 infer requests to
Triton's ``simple`` model, as seeds 002/003 do (JSON body, ``curl -X POST .../infer``).

Run by the benchmark from a venv of its own (Locust's geventhttpclient pin conflicts
with tritonclient's). Environment:

* ``HPCT_BODY=json`` (default: the seeds' JSON tensors) or ``binary`` (Triton's binary
  tensor extension, the very bytes the load check sends: same work for the server);
* ``HPCT_BENCH_OUT``: a file that receives this process's own CPU time (rusage) at the
  start and the end of the test, so start-up costs can be told apart.
"""

import json
import os
import resource
import struct
import time

from locust import FastHttpUser, constant, events, task

INPUT0 = list(range(16))
INPUT1 = [1] * 16

if os.environ.get("HPCT_BODY", "json") == "binary":
    RAW = struct.pack("<16i", *INPUT0) + struct.pack("<16i", *INPUT1)
    HEADER = json.dumps({
        "inputs": [{"name": n, "datatype": "INT32", "shape": [1, 16],
                    "parameters": {"binary_data_size": 64}} for n in ("INPUT0", "INPUT1")],
        "parameters": {"binary_data_output": True}}, separators=(",", ":")).encode()
    BODY = HEADER + RAW
    HEADERS = {"Content-Type": "application/octet-stream",
               "Inference-Header-Content-Length": str(len(HEADER))}
else:
    BODY = json.dumps({"inputs": [
        {"name": "INPUT0", "datatype": "INT32", "shape": [1, 16], "data": [INPUT0]},
        {"name": "INPUT1", "datatype": "INT32", "shape": [1, 16], "data": [INPUT1]}]}).encode()
    HEADERS = {"Content-Type": "application/json"}

_MARKS = {}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@events.test_start.add_listener
def _start(**_kwargs):
    _MARKS["cpu0"], _MARKS["t0"] = _cpu(), time.monotonic()


@events.test_stop.add_listener
def _stop(**_kwargs):
    out = os.environ.get("HPCT_BENCH_OUT")
    if out and "cpu0" in _MARKS:
        with open(out, "w") as fh:
            json.dump({"cpu_s": _cpu() - _MARKS["cpu0"],
                       "wall_s": time.monotonic() - _MARKS["t0"]}, fh)


class TritonUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def infer(self):
        self.client.post("/v2/models/simple/infer", data=BODY, headers=HEADERS)

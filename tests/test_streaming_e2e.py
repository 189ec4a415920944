"""A decoupled model's streaming load from three tasks of one Slurm job, end to end:
submitted through the real sshd to the real one-node Slurm, run under srun against the
real Triton's ``token_streamer``, collected, and merged into one report whose request
count equals the server's and whose token figures cover every task; then the infer
check's streaming entries and the report's streaming figures."""

from __future__ import annotations

import json

import pytest
from e2e import make_config
from fixtures_triton import server_success

from hpctriton.api import Run, submit
from hpctriton.report.html import html_report
from hpctriton.results.streaming import stream_points

pytestmark = pytest.mark.service

MODEL = "token_streamer"


def test_streaming_load_from_three_slurm_tasks_is_merged_by_collect(tmp_path, sshd, slurm,
                                                                    triton) -> None:
    load = {"protocol": "grpc", "concurrency": [1, 2], "warmup_s": 0.2, "window_s": 0.4,
            "stability": {"windows": 2, "percent": 50, "max_trials": 3}, "tasks": 3,
            "inputs": {"max_tokens": 6}, "slo": {"ttft_ms": 5000}}
    config = make_config(tmp_path, triton, sshd, models=[MODEL],
                         checks=["health", "infer", {"load": load}],
                         cluster={"env": {"HPCTRITON_LOAD_LEAD_S": "6"}})
    before = server_success(triton, MODEL)
    run = submit(config, "test")
    assert isinstance(run, Run)
    with run:
        status = run.wait(timeout_s=180, hint_interval_s=2.0, hint_interval_max_s=4.0)
        assert status.done, status.counts()
        run.collect()
        after = server_success(triton, MODEL)
        results = run.results()
        assert results.ok, [(c.check, c.protocol, c.model, c.status, c.message)
                            for c in results.checks if not c.ok]
        infer = [c for c in results.by_check("infer") if c.model == MODEL]
        assert sorted(c.details["endpoint"] for c in infer) == ["ModelStreamInfer",
                                                               "generate_stream"]
        assert all(c.details["responses"] == 16 for c in infer)
        task_dir = run.path / "results" / "0"
        assert {"load/rank-0.json", "load/rank-1.json", "load/rank-2.json",
                "load-merged.csv"} <= {p.relative_to(task_dir).as_posix()
                                       for p in task_dir.rglob("*")}
        merged = json.loads((task_dir / "load-merged.json").read_text())
        assert merged["ranks_found"] == [0, 1, 2]
        entries = merged["entries"]
        assert [e["details"]["concurrency"] for e in entries] == [1, 2]
        # the server's count covers the infer check's two requests too
        assert sum(e["details"]["totals"]["ok"] for e in entries) == after - before - 2
        for e in entries:
            d = e["details"]
            assert e["status"] == "pass" and "3 tasks merged" in e["message"], e["message"]
            assert d["counts_match"] is True
            assert d["tokens_per_request"] == {"mean": 6.0, "p50": 6.0, "max": 6}
            assert round(d["output_tokens_per_s"] * d["duration_s"]) == 6 * d["requests"]
            assert d["ttft_ms"]["p50"] >= 20.0 and d["goodput_share"] == 1.0
        # three tasks against a model serving one request at a time: the server's
        # pace is shared, so each task's own requests are about a third of the whole
        own = [c for c in results.by_check("load") if c.model == MODEL]
        assert [c.details["tasks"] for c in own] == [3, 3]  # the merged figures shown
        points = stream_points(results)
        assert [p.load for p in points] == [1.0, 2.0]
        assert points[0].output_tokens_per_s == entries[0]["details"]["output_tokens_per_s"]
        assert "Streaming (decoupled models)" in html_report(run)

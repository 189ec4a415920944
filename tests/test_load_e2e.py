"""A load from three tasks of one Slurm job, end to end: submitted through the real
sshd to the real one-node Slurm, run under srun against the real Triton, collected and
merged into one report whose counts equal the server's."""

from __future__ import annotations

import json

import pytest
from e2e import make_config
from fixtures_triton import server_success

from hpctriton.api import Run, submit
from hpctriton.runs.collect import verify_task_dir

pytestmark = pytest.mark.service


def test_load_from_three_slurm_tasks_is_merged_by_collect(tmp_path, sshd, slurm,
                                                         triton) -> None:
    load = {"protocol": "http", "concurrency": [1, 2], "warmup_s": 0.2, "window_s": 0.3,
            "stability": {"windows": 2, "percent": 50, "max_trials": 3}, "tasks": 3}
    config = make_config(tmp_path, triton, sshd, checks=["health", {"load": load}],
                         cluster={"env": {"HPCTRITON_LOAD_LEAD_S": "6"}})
    before = server_success(triton, "simple")
    run = submit(config, "test")
    assert isinstance(run, Run)
    with run:
        status = run.wait(timeout_s=180, hint_interval_s=2.0, hint_interval_max_s=4.0,
                          collect=False)
        assert status.done, status.counts()
        report = run.collect()
        after = server_success(triton, "simple")
        assert report.fetched == [0]
        assert report.load_merged == {0: ["load-merged.json", "load-merged.csv"]}
        task_dir = run.path / "results" / "0"
        assert verify_task_dir(task_dir) == []  # the manifest covers load/ too
        names = {p.relative_to(task_dir).as_posix() for p in task_dir.rglob("*")}
        assert {"load/rank-0.json", "load/rank-1.json", "load/rank-2.json",
                "load/rank-1.log", "load.csv", "results.json"} <= names
        results = run.results()
        assert results.ok, [(c.check, c.model, c.status, c.message) for c in results.checks
                            if not c.ok]
        merged = json.loads((task_dir / "load-merged.json").read_text())
        assert merged["ranks"] == 3 and merged["ranks_found"] == [0, 1, 2]
        entries = merged["entries"]
        assert [e["details"]["concurrency"] for e in entries] == [1, 2]
        assert sum(e["details"]["totals"]["ok"] for e in entries) == after - before
        assert all(e["details"]["counts_match"] for e in entries), [e["message"]
                                                                   for e in entries]
        assert all(e["status"] == "pass" and "3 tasks merged" in e["message"]
                   for e in entries)
        csv_rows = (task_dir / "load-merged.csv").read_text().splitlines()
        assert len(csv_rows) == 3 and csv_rows[1].split(",")[-3] == "3"  # the Tasks column
        # the run's results (report, notebook) show the merged figures, not rank 0's share
        shown = [c for c in results.by_check("load") if c.model is not None]
        assert [c.details["tasks"] for c in shown] == [3, 3]
        assert all(c.details["rank"] is None for c in shown)

"""Merging the load files of several tasks, the stability rule, and the load check's
options and job-script wiring (no server needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hpctriton.config import load_tasks
from hpctriton.runs.merge import MERGED_CSV, MERGED_JSON, merge_docs, merge_task_dir
from hpctriton_probe.load import stats as loadstats
from hpctriton_probe.load.generator import ModelRecorder
from hpctriton_probe.load.hist import RELATIVE_ERROR
from hpctriton_probe.spec import DEFAULT_CHECKS, LoadOptions, SpecError, from_dict

WINDOW_S = 1.0
WINDOWS = 5


def rank_doc(rank: int, ranks: int, raw: dict[int, list[int]], *, seed: int,
             errors: int = 0, n: int = 4000) -> dict:
    """A rank file as the probe writes it, from synthetic answers; the latencies each
    window holds are appended to ``raw[window]``."""
    rng = np.random.default_rng(seed)
    rec = ModelRecorder("simple", 1, 0.0, WINDOW_S, WINDOWS, open_loop=False)
    done = rng.uniform(-0.5, WINDOWS * WINDOW_S + 0.5, size=n)  # warm-up and drain too
    lat_s = rng.lognormal(np.log(0.003 * (1 + rank)), 0.5, size=n)
    for t1, lat in zip(done.tolist(), lat_s.tolist(), strict=True):
        rec.sent += 1
        t0 = t1 - lat
        rec.done(t0, t1, None)
        if 0 <= t1 < WINDOWS * WINDOW_S:
            raw.setdefault(int(t1 / WINDOW_S), []).append(int((t1 - t0) * 1e6))
    for i in range(errors):
        rec.sent += 1
        rec.done(0.0, 0.1 + i * 0.5, ("server", "500", "boom"))
    load = {"load_index": 0, "protocol": "grpc", "streaming": False, "mode": "concurrency",
            "schedule": "constant", "batch_size": 1, "warmup_s": 0.5, "window_s": WINDOW_S,
            "stability": {"windows": 3, "percent": 25.0, "max_trials": WINDOWS},
            "aligned": ranks > 1, "ranks": ranks, "models": ["simple"], "interrupted": False,
            "points": [{"index": 0, "value": 2, "windows_run": WINDOWS, "stopped_early": False,
                        "late_s": 0.0, "client": {"cpu_s": 0.5, "wall_s": 6.0,
                                                  "connections": 2},
                        "models": {"simple": rec.to_json(WINDOWS)}}]}
    if rank == 0:
        load["points"][0]["server"] = {"simple": {"success": 0, "fail": 0,
                                                  "queue_avg_ms": 0.1}}
    return {"format": loadstats.RANK_FORMAT, "rank": rank, "ranks": ranks, "host": f"n{rank}",
            "run_id": "r", "task": 0, "rlimit_nofile": {"soft": 1024}, "loads": [load]}


def test_merged_histograms_of_three_tasks_agree_with_numpy_of_all_samples() -> None:
    raw: dict[int, list[int]] = {}
    docs = [rank_doc(r, 3, raw, seed=10 + r) for r in range(3)]
    total_ok = sum(d["loads"][0]["points"][0]["models"]["simple"]["ok"] for d in docs)
    docs[0]["loads"][0]["points"][0]["server"]["simple"]["success"] = total_ok
    report = merge_docs(json.loads(json.dumps(docs)))  # as read back from files
    assert report["ranks_found"] == [0, 1, 2] and report["ranks_missing"] == []
    point = report["loads"][0]["points"][0]
    fig = point["models"]["simple"]
    used = point["windows_used"]
    assert len(used) == 3
    samples = np.array([v for w in used for v in raw.get(w, [])])
    assert fig["requests"] == len(samples)
    assert fig["throughput_rps"] == pytest.approx(len(samples) / (len(used) * WINDOW_S))
    for name, q in (("p50", 50), ("p90", 90), ("p95", 95), ("p99", 99)):
        exact_us = float(np.percentile(samples, q, method="inverted_cdf"))
        got_us = fig["latency_ms"][name] * 1000
        assert abs(got_us - exact_us) <= RELATIVE_ERROR * exact_us + 1.0, (name, got_us,
                                                                            exact_us)
    assert fig["latency_ms"]["max"] * 1000 == pytest.approx(samples.max(), abs=1.0)
    assert fig["totals"]["ok"] == total_ok and fig["counts_match"] is True
    entry = report["entries"][0]
    assert entry["details"]["tasks"] == 3 and entry["details"]["rank"] is None
    assert "3 tasks merged" in entry["message"] and entry["status"] == "pass"


def test_merge_task_dir_writes_report_and_csv_and_says_which_ranks_are_missing(
        tmp_path: Path) -> None:
    raw: dict[int, list[int]] = {}
    load_dir = tmp_path / "load"
    load_dir.mkdir()
    for r in (0, 2):  # rank 1 never wrote its file
        (load_dir / f"rank-{r}.json").write_text(json.dumps(rank_doc(r, 3, raw, seed=r)))
    written = merge_task_dir(tmp_path)
    assert [p.name for p in written] == [MERGED_JSON, MERGED_CSV]
    report = json.loads((tmp_path / MERGED_JSON).read_text())
    assert report["ranks_found"] == [0, 2] and report["ranks_missing"] == [1]
    rows = (tmp_path / MERGED_CSV).read_text().splitlines()
    assert rows[0].startswith("Concurrency,Inferences/Second,Client Send,")
    assert len(rows) == 2 and rows[1].split(",")[0] == "2"


def test_one_rank_merges_to_its_own_figures(tmp_path: Path) -> None:
    raw: dict[int, list[int]] = {}
    doc = rank_doc(0, 1, raw, seed=3, errors=2)
    report = merge_docs([doc])
    own = loadstats.entries(doc["loads"][0], doc["loads"][0]["points"][0])
    assert report["entries"][0]["details"]["latency_ms"] == own[0]["details"]["latency_ms"]
    assert report["entries"][0]["status"] == own[0]["status"] == "fail"  # 2 errors
    assert "2 of" in own[0]["message"] and own[0]["details"]["errors_total"] == {"server": 2}
    assert merge_task_dir(tmp_path) == []  # no load folder: nothing to do


def test_stability_rule_is_perf_analyzers() -> None:
    steady = [(100, 2.0), (104, 2.1), (97, 1.95)]
    assert loadstats.is_stable(steady, 10)
    assert not loadstats.is_stable([(100, 2.0), (130, 2.0), (100, 2.0)], 10)
    assert not loadstats.is_stable([(100, 2.0), (100, 3.0), (100, 2.0)], 10)
    assert loadstats.is_stable([(0, None)] * 3, 10)  # nothing answered: settled at zero
    assert not loadstats.is_stable([(0, None), (5, 1.0), (0, None)], 10)
    windows = {"a": [(10, 5.0), (100, 2.0), (101, 2.0), (99, 2.0), (100, 2.0)],
               "b": [(50, 1.0), (50, 1.0), (20, 1.0), (50, 1.0), (50, 1.0)]}
    assert loadstats.choose_windows(windows, 2, 10) == (3, 5, True)
    assert loadstats.choose_windows({"a": [(1, 1.0), (9, 1.0)]}, 3, 10) == (0, 2, False)


# ----------------------------------------------------------------------- options


def test_load_options_parse_perf_analyzer_ranges() -> None:
    opts = from_dict(LoadOptions, {"concurrency": "1:16:2"})
    assert opts.points() == [1, 3, 5, 7, 9, 11, 13, 15] and opts.mode == "concurrency"
    assert from_dict(LoadOptions, {"request_rate": "100:500:100"}).points() == [
        100.0, 200.0, 300.0, 400.0, 500.0]
    assert from_dict(LoadOptions, {"concurrency": [1, 2, 4]}).points() == [1, 2, 4]
    assert from_dict(LoadOptions, {}).points() == [1]
    assert from_dict(LoadOptions, {"request_rate": 50}).mode == "request_rate"
    assert "load" not in DEFAULT_CHECKS


@pytest.mark.parametrize("options, message", [
    ({"concurrency": 2, "request_rate": 10}, "not both"),
    ({"protocol": "http", "streaming": True}, "streaming needs protocol grpc"),
    ({"concurrency": "4:1"}, "START <= END"),
    ({"concurrency": "a:b"}, "not a range"),
    ({"schedule": "bursty"}, "schedule"),
    ({"stability": {"windows": 5, "max_trials": 3}}, "max_trials"),
    ({"request_rate": [0]}, "greater than zero"),
    ({"tasks": 0}, "tasks"),
    ({"bogus": 1}, "valid keys"),
])
def test_load_options_are_checked(options: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        from_dict(LoadOptions, options)


def _config(tmp_path: Path, load: dict, slurm: dict | None = None) -> object:
    from hpctriton.config import config_from_data

    image = tmp_path / "img.sif"
    image.write_bytes(b"x")
    return config_from_data({
        "server": {"host": "h", "grpc_port": 8001},
        "models": ["simple"], "checks": ["health", {"load": load}],
        "container": {"runtime": "singularity", "image": str(image), "instance": True},
        "clusters": {"c": {"backend": "slurm", "slurm": slurm or {}},
                     "l": {"backend": "local"}}}, base_dir=tmp_path)


def test_load_from_three_tasks_renders_ntasks_and_srun(tmp_path: Path) -> None:
    from hpctriton.render.bundle import render_bundle

    config = _config(tmp_path, {"concurrency": [1, 2], "tasks": 3})
    assert load_tasks(config) == 3  # type: ignore[arg-type]
    bundle = render_bundle(config, tmp_path / "b", cluster="c")  # type: ignore[arg-type]
    script = (bundle.path / "job.sh").read_text()
    assert "#SBATCH --ntasks=3\n" in script
    assert "srun --ntasks=3 --kill-on-bad-exit=0" in script
    assert "--load-ranks 3 --load-start-at \"$hpctriton_load_start\"" in script
    assert "instance start" not in script  # every srun task runs its own container
    local = render_bundle(config, tmp_path / "l", cluster="l")  # type: ignore[arg-type]
    assert "srun" not in (local.path / "job.sh").read_text()


def test_ntasks_below_the_load_tasks_is_refused(tmp_path: Path) -> None:
    from hpctriton.errors import ConfigError
    from hpctriton.render.bundle import render_bundle

    config = _config(tmp_path, {"tasks": 4}, slurm={"ntasks": 2})
    with pytest.raises(ConfigError, match="tasks: 4"):
        render_bundle(config, tmp_path / "b", cluster="c")  # type: ignore[arg-type]

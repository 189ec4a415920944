"""Schedulers are plugins: a package of its own registers one through the entry-point
group, and a plugin that cannot be imported fails only the clusters that choose it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hpctriton.schedulers import registry
from hpctriton.schedulers.slurm import SlurmScheduler

PLUGIN = '''
from hpctriton.schedulers import Capabilities, Scheduler, SchedulerOptions


class PbsOptions(SchedulerOptions):
    queue: str = "batch"


class PbsScheduler(Scheduler[PbsOptions]):
    name = "pbs"
    options_model = PbsOptions
    job_template = "hpctriton_pbs_demo:job.sh.j2"
    capabilities = Capabilities(job_arrays=True)
    manual_command = "qsub job.sh"

    def job_values(self, ctx):
        return {"queue": self.options(ctx.cluster).queue}

    def submit(self, transport, run, tasks):
        return []

    def poll(self, transport, run, tasks):
        return {}

    def cancel(self, transport, run, tasks):
        pass
'''
JOB_TEMPLATE = '''{% extends "hpctriton.render:job.sh.j2" %}
{% block directives %}
#PBS -q {{ queue | q }}
{% endblock %}
'''
ENTRY_POINTS = '''[hpctriton.schedulers]
pbs = hpctriton_pbs_demo:PbsScheduler
broken = hpctriton_no_such_module:BrokenScheduler
'''
SCRIPT = '''
import json, sys
from hpctriton.config import config_from_data, json_schema
from hpctriton.errors import ConfigError
from hpctriton.render.bundle import render_bundle
from hpctriton.schedulers import names

base = {"server": {"host": "h", "http_port": 1}, "models": ["m"],
        "container": {"runtime": "none"}}
config = config_from_data({**base, "clusters": {
    "p": {"backend": "pbs", "python": "/usr/bin/python3", "pbs": {"queue": "short q"}},
    "s": {"backend": "slurm"}}})
bundle = render_bundle(config, sys.argv[1], cluster="p", run_id="r-abcd")
try:
    config_from_data({**base, "clusters": {"b": {"backend": "broken"}}})
    broken = None
except ConfigError as exc:
    broken = [exc.field, str(exc)]
print(json.dumps({"names": names(), "job": (bundle.path / "job.sh").read_text(),
                  "schema": sorted(json_schema()["$defs"]), "broken": broken}))
'''


def test_the_built_in_schedulers_need_no_package_metadata(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: [])
    registry._targets.cache_clear()
    try:
        assert registry.names() == ["slurm", "dicos", "local"]
        assert registry.load("slurm") is SlurmScheduler
    finally:
        registry._targets.cache_clear()


def test_a_scheduler_package_registers_through_the_entry_point_group(tmp_path: Path) -> None:
    site = tmp_path / "site"
    package = site / "hpctriton_pbs_demo"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    (package / "templates" / "job.sh.j2").write_text(JOB_TEMPLATE)
    dist = site / "hpctriton_pbs_demo-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hpctriton-pbs-demo\n"
                                   "Version: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(site), str(Path(__file__).resolve().parent.parent)])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "bundle")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["names"] == ["slurm", "dicos", "local", "pbs", "broken"]
    assert answer["job"].startswith("#!/bin/bash\n#PBS -q 'short q'\n")
    assert "# Run from inside this folder: qsub job.sh" in answer["job"]
    assert {"PbsCluster", "PbsOptions", "SlurmCluster"} <= set(answer["schema"])
    # the broken plugin's import error waits until a cluster chooses it
    field, message = answer["broken"]
    assert field == "clusters.b.backend"
    assert "the broken scheduler (hpctriton_no_such_module:BrokenScheduler) cannot be " \
           "loaded: ModuleNotFoundError" in message

"""hpctriton: check, load-test and monitor a Triton server from HPC batch jobs.

Everything the command line does is a function here first::

    from hpctriton import load_config, open_run, plan, submit

    plan(load_config("hpctriton.yaml"), cluster="asgc-slurm")    # what submit would do
    run = submit(load_config("hpctriton.yaml"), cluster="asgc-slurm")
    run.wait(progress=True)       # state files, scheduler hints at most every 30 s
    run.collect()                 # one verified tar stream back through SSH
    run.results()                 # pass/fail per check, HTML in Jupyter, pandas, plots
    open_run()                    # the newest run again, from a new process or day

Errors all derive from :class:`HpctritonError` (see :mod:`hpctriton.errors`).
"""

from hpctriton.api import Run, SubmitPlan, open_run, plan, submit
from hpctriton.config import (
    ClusterConfig,
    Config,
    config_from_data,
    json_schema,
    load_config,
)
from hpctriton.errors import (
    CollectError,
    CommandError,
    ConfigError,
    HostKeyError,
    HpctritonError,
    PartialSubmitError,
    RemoteError,
    RenderError,
    RunNotFound,
    TransportError,
    UsageError,
)
from hpctriton.render.bundle import Bundle, render_bundle
from hpctriton.report.notebook import Results
from hpctriton.results.model import CheckResult, TaskResults
from hpctriton.runs.collect import CollectReport
from hpctriton.runs.record import RunRecord, list_runs
from hpctriton.runs.states import TaskStatus
from hpctriton.runs.watch import RunStatus
from hpctriton.schedulers import JobRef, JobState
from hpctriton.tools.check import check, config_for_check
from hpctriton_probe import __version__

__all__ = [
    "Bundle",
    "CheckResult",
    "ClusterConfig",
    "CollectError",
    "CollectReport",
    "CommandError",
    "Config",
    "ConfigError",
    "HostKeyError",
    "HpctritonError",
    "JobRef",
    "JobState",
    "PartialSubmitError",
    "RemoteError",
    "RenderError",
    "Results",
    "Run",
    "RunNotFound",
    "RunRecord",
    "RunStatus",
    "SubmitPlan",
    "TaskResults",
    "TaskStatus",
    "TransportError",
    "UsageError",
    "__version__",
    "check",
    "config_for_check",
    "config_from_data",
    "json_schema",
    "list_runs",
    "load_config",
    "open_run",
    "plan",
    "render_bundle",
    "submit",
]

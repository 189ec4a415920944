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

import typing as _typing

if _typing.TYPE_CHECKING:  # the names below, for type checkers; at run time: __getattr__
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
    from hpctriton.runs.collect import CollectIncomplete, CollectReport
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
    "CollectIncomplete",
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

#: Where each public name lives. They are imported on first use (PEP 562): the command
#: line starts without pydantic, jinja2, rich or paramiko, and ``import hpctriton`` in a
#: notebook costs only what is used.
_LAZY = {
    "Run": "hpctriton.api", "SubmitPlan": "hpctriton.api", "open_run": "hpctriton.api",
    "plan": "hpctriton.api", "submit": "hpctriton.api",
    "ClusterConfig": "hpctriton.config", "Config": "hpctriton.config",
    "config_from_data": "hpctriton.config", "json_schema": "hpctriton.config",
    "load_config": "hpctriton.config",
    "CollectError": "hpctriton.errors", "CommandError": "hpctriton.errors",
    "ConfigError": "hpctriton.errors", "HostKeyError": "hpctriton.errors",
    "HpctritonError": "hpctriton.errors", "PartialSubmitError": "hpctriton.errors",
    "RemoteError": "hpctriton.errors", "RenderError": "hpctriton.errors",
    "RunNotFound": "hpctriton.errors", "TransportError": "hpctriton.errors",
    "UsageError": "hpctriton.errors",
    "Bundle": "hpctriton.render.bundle", "render_bundle": "hpctriton.render.bundle",
    "Results": "hpctriton.report.notebook",
    "CheckResult": "hpctriton.results.model", "TaskResults": "hpctriton.results.model",
    "CollectIncomplete": "hpctriton.runs.collect", "CollectReport": "hpctriton.runs.collect",
    "RunRecord": "hpctriton.runs.record", "list_runs": "hpctriton.runs.record",
    "TaskStatus": "hpctriton.runs.states", "RunStatus": "hpctriton.runs.watch",
    "JobRef": "hpctriton.schedulers", "JobState": "hpctriton.schedulers",
    "check": "hpctriton.tools.check", "config_for_check": "hpctriton.tools.check",
    "__version__": "hpctriton_probe",
}


def __getattr__(name: str) -> object:
    """Import a public name on first use, and keep it (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hpctriton' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

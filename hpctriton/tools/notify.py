"""``notify:``: tell someone when a scheduled run fails, regresses or goes missing.

Runs on the machine that collects (``hpctriton collect --all``; for a run outside a
schedule ``submit --wait``, ``wait`` and ``collect RUN``), never on the cluster.
A ``command`` runs with ``sh -c`` (shell text by design, the user's own), the event as
JSON on stdin and in environment variables; a ``url`` receives the same JSON as a POST
(``urllib``, HTTPS certificates verified). A notification that fails is reported as a
warning: it never changes what collect did or its exit code.

The JSON::

    {"event": "regressed", "run_id": "nightly-0007", "schedule": "nightly",
     "cluster": "asgc-slurm", "host": "alice@ui.example.org", "verdict": "regressed",
     "started_at": "...", "due_at": "...", "reasons": ["paced grpc ... p99: 20.1 -> 61.0 ms
     (99% CI ...)"], "path": "/home/alice/hpctriton-runs/nightly-0007"}
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import urllib.request
from dataclasses import dataclass
from typing import Any

from hpctriton.config.models import NotifyConfig

log = logging.getLogger("hpctriton.notify")


@dataclass(frozen=True)
class Event:
    kind: str
    run_id: str
    schedule: str | None
    cluster: str | None
    host: str | None
    started_at: str | None
    due_at: str | None
    reasons: list[str]
    path: str | None

    def to_json(self) -> dict[str, Any]:
        return {"event": self.kind, "run_id": self.run_id, "schedule": self.schedule,
                "cluster": self.cluster, "host": self.host, "verdict": self.kind,
                "started_at": self.started_at, "due_at": self.due_at,
                "reasons": self.reasons, "path": self.path}

    def environ(self) -> dict[str, str]:
        return {"HPCTRITON_EVENT": self.kind, "HPCTRITON_RUN_ID": self.run_id,
                "HPCTRITON_SCHEDULE": self.schedule or "",
                "HPCTRITON_CLUSTER": self.cluster or "", "HPCTRITON_HOST": self.host or "",
                "HPCTRITON_REASON": self.reasons[0] if self.reasons else "",
                "HPCTRITON_RUN_PATH": self.path or ""}


def send(notify: NotifyConfig, event: Event) -> list[str]:
    """Run the command and/or POST to the url; returns problems (empty: delivered)."""
    if event.kind not in notify.on:
        return []
    body = json.dumps(event.to_json(), indent=1) + "\n"
    problems = []
    if notify.command:
        try:
            done = subprocess.run(["sh", "-c", notify.command], input=body, text=True,
                                  env={**os.environ, **event.environ()}, capture_output=True,
                                  timeout=notify.timeout_s)
            if done.returncode != 0:
                problems.append(f"notify command exited {done.returncode}: "
                                f"{done.stderr.strip()[-300:]}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            problems.append(f"notify command: {exc}")
    if notify.url:
        request = urllib.request.Request(
            notify.url, data=body.encode(), method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "hpctriton"})
        try:
            with urllib.request.urlopen(request, timeout=notify.timeout_s) as answer:
                if not 200 <= answer.status < 300:
                    problems.append(f"notify url answered {answer.status}")
        except OSError as exc:  # URLError, HTTPError, timeouts, certificates
            problems.append(f"notify url {notify.url}: {exc}")
    for problem in problems:
        log.warning("%s (run %s, %s)", problem, event.run_id, event.kind)
    return problems

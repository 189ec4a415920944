"""JUnit XML from a results document, for CI systems and the report command.

A pure function of the results dict (standard library only), so the probe inside a
job and ``hpctriton report`` on a laptop produce the same XML from the same results.
One ``<testsuite>`` per task, one ``<testcase>`` per result entry: ``fail`` becomes
``<failure>``, ``error`` becomes ``<error>``, ``skip`` becomes ``<skipped>``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

_CONTROL = {c: None for c in range(32) if c not in (9, 10, 13)}


def _clean(text: Any) -> str:
    """XML 1.0 cannot carry most control characters: drop them."""
    return str(text).translate(_CONTROL)


def testcase_name(entry: dict) -> str:
    """``check[protocol]`` or ``check[protocol] model``: stable, readable names."""
    name = "{}[{}]".format(entry.get("check"), entry.get("protocol") or "-")
    if entry.get("model"):
        name += " " + str(entry["model"])
    return name


def _suite(results: dict) -> ET.Element:
    run = results.get("run", {})
    entries = results.get("checks", [])
    counts = {s: sum(1 for e in entries if e.get("status") == s)
              for s in ("fail", "error", "skip")}
    task = run.get("task", 0)
    suite = ET.Element("testsuite", {
        "name": f"hpctriton.task{task}",
        "tests": str(len(entries) + (1 if run.get("interrupted") else 0)),
        "failures": str(counts["fail"]),
        "errors": str(counts["error"] + (1 if run.get("interrupted") else 0)),
        "skipped": str(counts["skip"]),
        "time": "{:.3f}".format(sum(float(e.get("duration_s") or 0) for e in entries)),
        "timestamp": _clean(run.get("started_at") or ""),
        "hostname": _clean(run.get("hostname") or ""),
    })
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "task", "job_id", "array_job_id", "array_task_id",
                "started_at", "ended_at", "interrupted"):
        if run.get(key) is not None:
            value = run[key]
            text = json.dumps(value) if isinstance(value, bool) else _clean(value)
            ET.SubElement(props, "property", {"name": key, "value": text})
    for key, value in sorted((run.get("versions") or {}).items()):
        ET.SubElement(props, "property", {"name": "version." + key, "value": _clean(value)})
    for entry in entries:
        case = ET.SubElement(suite, "testcase", {
            "classname": "hpctriton.{}".format(entry.get("check")),
            "name": _clean(testcase_name(entry)),
            "time": "{:.3f}".format(float(entry.get("duration_s") or 0)),
        })
        status, message = entry.get("status"), _clean(entry.get("message") or "")
        if status in ("fail", "error"):
            child = ET.SubElement(case, "failure" if status == "fail" else "error",
                                  {"message": message, "type": status})
            child.text = _clean(json.dumps(entry.get("details") or {}, indent=1, default=str))
        elif status == "skip":
            ET.SubElement(case, "skipped", {"message": message})
        elif message:
            ET.SubElement(case, "system-out").text = message
    if run.get("interrupted"):
        case = ET.SubElement(suite, "testcase", {"classname": "hpctriton.run",
                                                 "name": "run interrupted", "time": "0"})
        ET.SubElement(case, "error", {"message": "the probe was interrupted (SIGTERM) before "
                                                 "all checks ran", "type": "interrupted"})
    return suite


def results_to_junit(results: Any) -> str:
    """JUnit XML text for one results document, or a list of them (one suite each).

    Example::

        xml = results_to_junit(json.load(open("results/0/results.json")))
    """
    docs = results if isinstance(results, list) else [results]
    root = ET.Element("testsuites", {"name": "hpctriton"})
    for doc in docs:
        root.append(_suite(doc))
    for attr in ("tests", "failures", "errors", "skipped"):
        root.set(attr, str(sum(int(s.get(attr, "0")) for s in root)))
    body = ET.tostring(root, encoding="unicode")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"

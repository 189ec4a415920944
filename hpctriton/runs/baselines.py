"""Named baselines (``hpctriton baseline set RUN --name NAME``): runs later runs are
judged against (``compare --baseline NAME``, ``history``, the notify hook).

Kept in ``baselines.json`` in the XDG state folder beside the run index
(:mod:`hpctriton.runs.index`): name -> the run's id and folder. A baseline points at a
run folder, which stays the truth; one whose folder is gone is refused by name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpctriton.errors import RunNotFound, UsageError
from hpctriton.runs import index
from hpctriton.runs.record import RunRecord, atomic_write, now_iso

log = logging.getLogger("hpctriton.runs.baselines")
BASELINES_NAME = "baselines.json"
BASELINES_LOCK = "baselines.lock"
DEFAULT_NAME = "default"


@dataclass(frozen=True)
class Baseline:
    name: str
    run_id: str
    path: Path
    set_at: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "run_id": self.run_id, "path": str(self.path),
                "set_at": self.set_at}


def _read(folder: Path) -> dict[str, Baseline]:
    try:
        data = json.loads((folder / BASELINES_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s: %s", folder / BASELINES_NAME, exc)
        return {}
    out = {}
    for item in (data.get("baselines") if isinstance(data, dict) else None) or []:
        try:
            out[str(item["name"])] = Baseline(str(item["name"]), str(item["run_id"]),
                                              Path(item["path"]), str(item["set_at"]))
        except (KeyError, TypeError):
            continue
    return out


def all_baselines() -> list[Baseline]:
    return sorted(_read(index.state_dir()).values(), key=lambda b: b.name)


def set_baseline(record: RunRecord, name: str = DEFAULT_NAME) -> Baseline:
    """Mark ``record``'s run as the baseline ``name`` (replacing an earlier one)."""
    if not name or "/" in name or name.strip() != name:
        raise UsageError(f"baseline name {name!r}: use letters, digits, '.', '_' or '-'")
    if not (record.results_dir).is_dir() or not any(record.results_dir.iterdir()):
        raise UsageError(f"run {record.run_id} has no collected results: collect it first "
                         "(a baseline is judged by its figures)")
    folder = index.state_dir()
    folder.mkdir(mode=index.STATE_DIR_MODE, parents=True, exist_ok=True)
    baseline = Baseline(name, record.run_id, record.path.absolute(), now_iso())
    with index.locked(folder, BASELINES_LOCK):
        known = _read(folder)
        known[name] = baseline
        text = json.dumps({"schema_version": 1, "baselines": [
            b.to_json() for b in sorted(known.values(), key=lambda b: b.name)]}, indent=1)
        atomic_write(folder / BASELINES_NAME, text + "\n", mode=index.INDEX_FILE_MODE)
    return baseline


def get_baseline(name: str) -> Baseline:
    """The baseline ``name``; :class:`RunNotFound` when unknown or its folder is gone."""
    known = _read(index.state_dir())
    if name not in known:
        names = ", ".join(sorted(known)) or "none yet"
        raise RunNotFound(f"no baseline {name!r} (known: {names}); "
                          "`hpctriton baseline set RUN --name NAME` marks one")
    baseline = known[name]
    if not (baseline.path / "run.json").is_file():
        raise RunNotFound(f"baseline {name!r} points at {baseline.path}, which is gone: "
                          "set it again")
    return baseline


def find_baseline(name: str) -> Baseline | None:
    """The baseline ``name`` when it exists and its folder too, else None."""
    try:
        return get_baseline(name)
    except RunNotFound:
        return None

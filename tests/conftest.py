"""Session-wide fixtures: real services are started once per test session.

Every test runs with ``XDG_STATE_HOME`` in a folder of its own, so the per-user run
index (:mod:`hpctriton.runs.index`) of a test never touches the real
``~/.local/state`` (nor another test's runs); subprocesses inherit it.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures_services import *  # noqa: F403 - pytest fixtures for sshd and Slurm
from fixtures_triton import *  # noqa: F403 - pytest fixtures for the Triton server


@pytest.fixture(scope="session", autouse=True)
def session_state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The XDG state directory of session- and module-scoped fixtures (a run a whole
    module reads, say), which start before any test's own: never the real one."""
    folder = tmp_path_factory.mktemp("xdg-state-session")
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_STATE_HOME", str(folder))
    yield folder
    patch.undo()


@pytest.fixture(autouse=True)
def private_state_dir(tmp_path_factory: pytest.TempPathFactory,
                      monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's XDG state directory (the run index lives in ``<it>/hpctriton``)."""
    folder = tmp_path_factory.mktemp("xdg-state")
    monkeypatch.setenv("XDG_STATE_HOME", str(folder))
    return folder

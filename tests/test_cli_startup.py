"""The command line starts light (issue 16, point 12), and says what to run next in a
form that works as written (points 1 and 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpctriton.cli import app

HEAVY = ("pydantic", "jinja2", "rich", "yaml", "paramiko", "matplotlib", "numpy",
         "tritonclient", "hpctriton.config", "hpctriton.api", "hpctriton.schedulers")


def _loaded_after(code: str) -> list[str]:
    probe = (f"{code}\nimport sys\n"
             f"print([m for m in {HEAVY!r} if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return eval(done.stdout.strip().splitlines()[-1])  # noqa: S307 - our own list literal


def test_help_imports_nothing_heavy() -> None:
    code = ("from hpctriton.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass")
    assert _loaded_after(code) == []


def test_default_config_names_agree() -> None:
    from hpctriton.config import DEFAULT_CONFIG
    from hpctriton.tools import check

    assert app.DEFAULT_CONFIG == check.DEFAULT_CONFIG == DEFAULT_CONFIG


def _fake_venv(root: Path) -> Path:
    program = root / ".venv" / "bin" / "hpctriton"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    (program.parent / "activate").write_text("# activate\n")
    return program


def test_next_commands_use_the_venv_path_when_it_is_not_active(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    program = _fake_venv(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(program), "demo"])
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert app.command_prefix() == [".venv/bin/hpctriton"]
    assert app.shell_command("report", "20261201-100000-local-1a2b") == \
        ".venv/bin/hpctriton report 20261201-100000-local-1a2b"
    assert "`. .venv/bin/activate`" in (app.activation_hint() or "")
    # from another folder: the absolute path; with the venv active: just `hpctriton`
    other = tmp_path / "other"
    other.mkdir()
    monkeypatch.chdir(other)
    assert app.command_prefix() == [str(program)]
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}/usr/bin")
    assert app.command_prefix() == ["hpctriton"] and app.activation_hint() is None


def test_next_commands_quote_what_the_shell_would_split(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    program = _fake_venv(tmp_path / "my project")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(program)])
    monkeypatch.setenv("PATH", "/usr/bin")
    assert app.shell_command("runs") == "'my project/.venv/bin/hpctriton' runs"


def test_python_dash_m_is_shown_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    import hpctriton

    main = Path(hpctriton.__file__).parent / "__main__.py"
    monkeypatch.setattr(sys, "argv", [str(main)])
    assert app.command_prefix()[1:] == ["-m", "hpctriton"]

"""`hpctriton check` from flags (issue 16, points 10 and 12): messages name the flags the
user wrote; flags alone go straight to the probe's task, the same task the config path
makes, without loading the config models, pydantic or any table library."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hpctriton.cli import cli
from hpctriton.errors import ConfigError
from hpctriton.report.summary import summary_line
from hpctriton.results.model import Results
from hpctriton.tools.check import (
    config_for_check,
    flag_names,
    flags_task,
    rename_fields,
    task_specs,
    verdict,
)

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("flags", [
    {"http_url": "127.0.0.1:8000", "models": ["simple"]},
    {"grpc_url": "localhost:8001", "metrics_url": "localhost:8002", "models": ["a", "b"]},
    {"http_url": "[::1]:8000", "grpc_url": "[::1]:8001", "models": ["simple"],
     "checks": ["health", "infer", "metrics"]},
    {"http_url": "http://h.example.org:8000/", "models": ["m"], "checks": ["keepalive"]},
])
def test_flags_alone_make_the_task_the_config_path_makes(flags: dict[str, Any],
                                                         tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./hpctriton.yaml
    (configured,) = task_specs(config_for_check(**flags))
    assert flags_task(**flags) == configured


@pytest.mark.parametrize("name", ["", " simple", "a/b"])
def test_both_paths_refuse_the_same_model_names(name: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="not a valid Triton model name"):
        flags_task(http_url="h:8000", models=[name])
    with pytest.raises(ConfigError, match="not a valid Triton model name"):
        config_for_check(http_url="h:8000", models=[name])


@pytest.mark.parametrize(("args", "says"), [
    (["--http-url", "127.0.0.1:8000"], "--model: no model to check: give --model NAME"),
    (["--http-url", "127.0.0.1:99999", "--model", "m"],
     "--http-url: port 99999 is not between 1 and 65535"),
    (["--grpc-url", "bad host:8001", "--model", "m"], "--grpc-url: host must be"),
    (["--metrics-url", "h:8002", "--model", "m"], "give --http-url or --grpc-url"),
    (["--http-url", "h:8000", "--model", "m", "--checks", "nope"], "--checks: unknown check"),
])
def test_flag_errors_name_the_flags(args: list[str], says: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", *args])
    assert result.exit_code == 2, result.output
    assert says in result.stderr
    assert "required field" not in result.stderr and "models:" not in result.stderr


def test_a_flag_over_a_config_file_is_named_by_its_flag(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"server": {"host": "h", "http_port": 8000},
                                    "models": ["simple"]}))
    with pytest.raises(ConfigError) as err:
        config_for_check(path, models=["a/b"])
    assert str(err.value).startswith("--model: ")


def test_probe_messages_name_flags_only_when_there_is_no_config() -> None:
    assert flag_names(None, http_url="h:8000")["server.metrics_port"] == "--metrics-url"
    assert flag_names("some.yaml", http_url="h:8000") == {}
    names = flag_names(None, grpc_url="h:8001")
    assert rename_fields("no server.metrics_port configured, so there are no Prometheus "
                         "metrics to scrape", names) == \
        "no --metrics-url given, so there are no Prometheus metrics to scrape"
    assert rename_fields("no server.http_port configured", names) == "no --http-url given"
    assert rename_fields("2 models, 3 checks", names) == "2 models, 3 checks"


def test_the_verdict_of_a_flags_check_reads_like_a_runs() -> None:
    passed = json.loads((DATA / "report_run_a" / "results" / "0" / "results.json").read_text())
    failed = json.loads(json.dumps(passed))
    failed["checks"][0]["status"] = "fail"
    for document in (passed, failed):
        ok, line = verdict(document)
        results = Results.from_data(document)
        assert (ok, line) == (results.ok, summary_line(results))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_flags_check_loads_neither_config_models_nor_tables(tmp_path: Path) -> None:
    """What a check at a terminal costs is the probe's start-up (issue 16, point 12)."""
    code = (
        "import sys\n"
        "from hpctriton.cli import main\n"
        "try:\n"
        f"    main(['check', '--http-url', '127.0.0.1:{_closed_port()}', '--model', 'm',\n"
        "          '--checks', 'health'])\n"
        "except SystemExit as exc:\n"
        "    print('exit', exc.code)\n"
        "heavy = ('pydantic', 'jinja2', 'rich', 'yaml', 'paramiko', 'matplotlib',\n"
        "         'hpctriton.config', 'hpctriton.schedulers', 'hpctriton.api')\n"
        "print('loaded', [m for m in heavy if m in sys.modules])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert "exit 1" in done.stdout, done.stdout + done.stderr  # the health check failed
    assert "loaded []" in done.stdout, done.stdout


@pytest.mark.service
def test_a_check_without_metrics_url_says_so_by_its_flag(triton: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check", "--http-url", f"127.0.0.1:{triton.http_port}",
                                      "--model", "simple", "--checks", "health,metrics"])
    assert result.exit_code == 0, result.output
    assert "no --metrics-url given" in result.stdout
    assert "server.metrics_port" not in result.stdout
    # with a config file, its own field is named
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"server": {"host": "127.0.0.1",
                                               "http_port": triton.http_port},
                                    "models": ["simple"], "checks": ["metrics"]}))
    result = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert "no server.metrics_port configured" in result.stdout

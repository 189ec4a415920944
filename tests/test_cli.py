"""The command line: conventions (--help, --json, exit codes), init/schema/render/check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from hpctriton.cli import cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
COMMANDS = ["init", "schema", "render", "check", "submit", "status", "wait", "cancel",
            "resubmit", "collect", "report", "compare", "runs", "doctor", "image", "demo"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_init_writes_a_starter_that_validates_and_refuses_to_overwrite(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "hpctriton.yaml"
    result = runner.invoke(cli, ["init", str(path)])
    assert result.exit_code == 0 and path.is_file()
    from hpctriton.config import load_config

    assert load_config(path).models == ["simple"]
    again = runner.invoke(cli, ["init", str(path)])
    assert again.exit_code == 2 and "exists" in again.output
    assert runner.invoke(cli, ["init", "-"]).output.startswith("# hpctriton config")


def test_schema_is_json() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert json.loads(result.output)["title"] == "hpctriton config"


def test_render_json_lists_the_bundle(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "-c", str(EXAMPLES / "asgc-dicos.yaml"),
                                      "-o", str(tmp_path / "b"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["backend"] == "dicos"
    assert {"job.sh", "probe.pyz", "spec.json", "submit.sh"} <= set(data["files"])


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--set", "server.http_port=0"], "between 1 and 65535"),
        (["--set", "models"], "key=value"),
        (["--set", "clusters.asgc-slurm.backend=pbs"], "valid backends"),
        (["--cluster", "nope"], "unknown cluster 'nope'"),
    ],
)
def test_render_bad_input_exits_2_and_writes_nothing(tmp_path: Path, args: list[str],
                                                     words: str) -> None:
    out = tmp_path / "b"
    result = CliRunner().invoke(cli, ["render", "-c", str(EXAMPLES / "asgc-slurm.yaml"),
                                      "-o", str(out), *args])
    assert result.exit_code == 2, result.output
    assert words in result.output
    assert result.output.startswith("hpctriton: error:")
    assert not out.exists()


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "-c", str(tmp_path / "none.yaml"), "-o",
                                      str(tmp_path / "b")])
    assert result.exit_code == 2 and "none.yaml: file not found" in result.output


def test_unknown_backend_flag_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["render", "-c", str(EXAMPLES / "local.yaml"), "-o",
                                      str(tmp_path / "b"), "--backend", "pbs"])
    assert result.exit_code == 2 and "pbs" in result.output


def test_check_without_config_or_urls_says_what_to_give(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 2
    assert "--http-url" in result.output and "-c FILE" in result.output


def test_check_refuses_urls_naming_different_hosts() -> None:
    result = CliRunner().invoke(cli, ["check", "--http-url", "a:1", "--grpc-url", "b:2",
                                      "--model", "m"])
    assert result.exit_code == 2 and "same host" in result.output


def test_status_without_runs_exits_2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2 and "no runs" in result.output


def test_submit_dry_run_writes_nothing(tmp_path: Path) -> None:
    config = yaml.safe_load((EXAMPLES / "local.yaml").read_text())
    config["runs_dir"] = str(tmp_path / "runs")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(cli, ["submit", "-c", str(path), "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["dry_run"] is True and plan["backend"] == "local"
    assert not (tmp_path / "runs").exists()


@pytest.mark.service
def test_check_here_and_now_against_a_real_server(triton, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    results = tmp_path / "r.json"
    junit = tmp_path / "j.xml"
    result = CliRunner().invoke(cli, [
        "check", "--http-url", triton.http_url, "--grpc-url", triton.grpc_url,
        "--metrics-url", triton.metrics_url, "--model", "simple",
        "--results", str(results), "--junit", str(junit)])
    assert result.exit_code == 0, result.output
    assert "PASS  infer      grpc  simple" in result.output
    data = json.loads(results.read_text())
    assert {c["status"] for c in data["checks"]} == {"pass"}
    assert "<testsuite" in junit.read_text()
    failing = CliRunner().invoke(cli, ["check", "--http-url", triton.http_url, "--model",
                                       "failing", "--checks", "infer", "--json"])
    assert failing.exit_code == 1
    assert json.loads(failing.output)["checks"][0]["status"] == "fail"


@pytest.mark.service
def test_check_reads_the_config_and_flags_override_it(triton, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hpctriton.yaml"
    path.write_text(yaml.safe_dump({
        "server": {"host": "127.0.0.1", "http_port": triton.http_port},
        "models": ["no_such_model"], "checks": ["health"]}))
    bad = CliRunner().invoke(cli, ["check", "-c", str(path)])
    assert bad.exit_code == 1
    good = CliRunner().invoke(cli, ["check", "-c", str(path), "--model", "simple"])
    assert good.exit_code == 0, good.output


def test_image_def_prints_and_writes_the_definition(tmp_path: Path) -> None:
    shown = CliRunner().invoke(cli, ["image", "def"])
    assert shown.exit_code == 0 and shown.output.startswith("Bootstrap: docker")
    target = tmp_path / "t.def"
    assert CliRunner().invoke(cli, ["image", "def", "-o", str(target)]).exit_code == 0
    assert target.read_text() == shown.output
    again = CliRunner().invoke(cli, ["image", "def", "-o", str(target)])
    assert again.exit_code == 2 and "exists" in again.output

"""``hpctriton image``: the build commands it composes, run through the real SSH test
server (and on this machine) against the ``singularity``/``apptainer`` stand-ins, which
check the arguments as the real CLI does and write a placeholder image for ``build``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from e2e import cluster_block
from fixtures_services import STANDIN_DIR, StandIns

from hpctriton.config import ClusterConfig, Config, config_from_data
from hpctriton.errors import CommandError, UsageError
from hpctriton.tools.compat import IMAGE
from hpctriton.tools.image import (
    DEFAULT_IMAGE,
    UPLOADED_DEF,
    ImageToolMissing,
    build_argv,
    build_commands,
    build_image,
    config_line,
    definition_text,
)

REPO = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path, cluster: dict[str, Any], runtime: str = "singularity") -> Config:
    data = {
        "server": {"host": "triton.example.org", "http_port": 8000},
        "models": ["simple"],
        "container": {"runtime": runtime, "image": "/ceph/images/site.sif"},
        "clusters": {"test": cluster},
    }
    return config_from_data(data, base_dir=tmp_path)


# ------------------------------------------------------------------- composing


def test_definition_text_is_the_file_in_singularity() -> None:
    assert definition_text() == (REPO / "hpctriton" / "tools" / "tritonclient.def").read_text()


def test_build_argv_has_fakeroot_only_when_asked() -> None:
    assert build_argv("o.sif", "d.def") == ["singularity", "build", "o.sif", "d.def"]
    assert build_argv("o.sif", "d.def", runtime="apptainer", fakeroot=True, force=True) == [
        "apptainer", "build", "--fakeroot", "--force", "o.sif", "d.def"]
    assert build_argv("o.sif", "d.def", binary="/opt/sing/bin/singularity")[0] == \
        "/opt/sing/bin/singularity"
    with pytest.raises(UsageError, match="use one of singularity, apptainer"):
        build_argv("o.sif", "d.def", runtime="docker")


def test_build_commands_puts_the_image_under_the_workdir_and_says_how_to_use_it() -> None:
    plan = build_commands(ClusterConfig(backend="slurm", host="login01"),
                          workdir="/home/alice/hpctriton-runs", fakeroot=True)
    image = f"/home/alice/hpctriton-runs/images/{DEFAULT_IMAGE}"
    assert f"tritonclient-py{IMAGE.python}-tc{IMAGE.tritonclient}.sif" == DEFAULT_IMAGE
    assert plan.argv == ["singularity", "build", "--fakeroot", image,
                         f"/home/alice/hpctriton-runs/images/{UPLOADED_DEF}"]
    assert plan.config_line == f"container: {{image: {image}}}"
    assert plan.where == "ssh"
    absolute = build_commands(ClusterConfig(backend="slurm", host="h"), workdir="/w",
                              output="/ceph/x.sif", runtime="apptainer")
    assert absolute.image == "/ceph/x.sif" and absolute.argv[0] == "apptainer"
    assert absolute.config_line == "container: {runtime: apptainer, image: /ceph/x.sif}"
    with pytest.raises(UsageError, match="must end in .sif"):
        build_commands(ClusterConfig(backend="slurm"), workdir="/w", output="x.img")
    with pytest.raises(UsageError, match="must be absolute"):
        build_commands(ClusterConfig(backend="slurm"), workdir="runs")


def test_config_line_quotes_a_path_yaml_would_misread() -> None:
    assert config_line("/a b/x: y.sif") == 'container: {image: "/a b/x: y.sif"}'


def test_the_build_script_quotes_every_value_and_is_valid_bash(tmp_path: Path) -> None:
    cluster = ClusterConfig(backend="slurm", host="h", container_bin="/opt/my sing/singularity",
                            prologue=["module load apptainer"])
    plan = build_commands(cluster, workdir="/home/a b/runs; echo x", output="it's.sif")
    assert "'/opt/my sing/singularity' build" in plan.script
    assert plan.script.splitlines()[1] == "module load apptainer"
    script = tmp_path / "build.sh"
    script.write_text(plan.script)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


# ------------------------------------------------------------------- over SSH


@pytest.mark.service
def test_build_over_ssh_uploads_the_definition_and_runs_singularity_build(
        sshd: Any, standin: StandIns, tmp_path: Path) -> None:
    config = _config(tmp_path, cluster_block(sshd, tmp_path, "slurm"))
    plans = []
    result = build_image(config, "test", fakeroot=True, on_plan=plans.append)
    images = tmp_path / "remote" / "images"
    image, uploaded = images / DEFAULT_IMAGE, images / UPLOADED_DEF
    assert plans == [result.plan] and result.plan.where == "ssh"
    assert result.host.startswith(f"{sshd.user}@127.0.0.1:")
    calls = standin.calls("singularity")
    assert [c["args"] for c in calls] == [["build", "--fakeroot", str(image), str(uploaded)]]
    assert uploaded.read_text() == definition_text()
    assert f"built from {uploaded}" in image.read_text()  # the stand-in's placeholder
    assert result.config_line == f"container: {{image: {image}}}"


@pytest.mark.service
def test_build_over_ssh_with_apptainer_and_an_existing_image(
        sshd: Any, standin: StandIns, tmp_path: Path) -> None:
    config = _config(tmp_path, cluster_block(sshd, tmp_path, "slurm"), runtime="apptainer")
    first = build_image(config, "test", output="my images/tc.sif")
    image = tmp_path / "remote" / "my images" / "tc.sif"
    assert first.config_line == f'container: {{runtime: apptainer, image: "{image}"}}'
    with pytest.raises(CommandError) as again:  # the real CLI refuses to overwrite
        build_image(config, "test", output="my images/tc.sif")
    assert "already exists" in str(again.value) and again.value.returncode == 255
    build_image(config, "test", output="my images/tc.sif", force=True)
    args = [c["args"] for c in standin.calls("apptainer")]
    assert [a[:2] for a in args] == [["build", str(image)]] * 2 + [["build", "--force"]]


@pytest.mark.service
def test_a_prologue_can_provide_the_binary_like_module_load(
        sshd: Any, standin: StandIns, tmp_path: Path) -> None:
    module_bin = tmp_path / "modules" / "bin"
    module_bin.mkdir(parents=True)
    (module_bin / "singularity-3.11").symlink_to(STANDIN_DIR / "singularity")
    cluster = cluster_block(sshd, tmp_path, "slurm", container_bin="singularity-3.11",
                            prologue=[f"export PATH={module_bin}:$PATH"])
    result = build_image(_config(tmp_path, cluster), "test")
    assert Path(result.plan.image).is_file()
    assert [c["argv"][0] for c in standin.calls()] == [str(module_bin / "singularity-3.11")]


@pytest.mark.service
def test_a_login_node_without_singularity_says_so_and_how_to_fix_it(
        sshd: Any, standin: StandIns, tmp_path: Path) -> None:
    cluster = cluster_block(sshd, tmp_path, "slurm", container_bin="/opt/none/singularity")
    with pytest.raises(ImageToolMissing) as missing:
        build_image(_config(tmp_path, cluster), "test")
    text = str(missing.value)
    assert text.startswith(f"/opt/none/singularity was not found on {sshd.user}@127.0.0.1:")
    assert "clusters.test.container_bin" in text and "module load apptainer" in text
    assert "hpctriton image def -o tritonclient.def" in text
    assert missing.value.exit_code == 3
    assert standin.calls() == []


# ------------------------------------------------------------------- this machine


def _local_path(monkeypatch: pytest.MonkeyPatch, standin: StandIns | None) -> None:
    folders = [os.path.dirname(sys.executable), "/usr/bin", "/bin"]
    if standin is not None:
        folders.insert(0, str(STANDIN_DIR))
        for key, value in standin.env.items():
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("PATH", os.pathsep.join(folders))


def test_a_local_build_goes_through_spython_where_singularity_exists(
        standin: StandIns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _local_path(monkeypatch, standin)
    monkeypatch.chdir(tmp_path)
    config = _config(tmp_path, {"backend": "local", "workdir": str(tmp_path / "work")})
    result = build_image(config, "test", fakeroot=True, output="tc.sif")
    assert result.plan.where == "spython" and result.host == "localhost"
    version, build = standin.calls("singularity")  # spython asks for the version first
    uploaded = tmp_path / "work" / "images" / UPLOADED_DEF
    assert version["args"] == ["--version"]
    assert build["args"] == ["build", "--fakeroot", str(tmp_path / "tc.sif"), str(uploaded)]
    assert (tmp_path / "tc.sif").is_file()
    assert result.config_line == f"container: {{image: {tmp_path / 'tc.sif'}}}"


def test_a_local_apptainer_build_runs_the_same_script(
        standin: StandIns, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _local_path(monkeypatch, standin)
    config = _config(tmp_path, {"backend": "local", "workdir": str(tmp_path / "work")})
    result = build_image(config, "test", runtime="apptainer")
    assert result.plan.where == "local"
    assert [c["args"][0] for c in standin.calls("apptainer")] == ["build"]
    assert Path(result.plan.image).is_file()


def test_without_singularity_here_or_a_host_it_says_what_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _local_path(monkeypatch, None)
    config = _config(tmp_path, {"backend": "local", "workdir": str(tmp_path / "work")})
    for runtime in ("singularity", "apptainer"):
        with pytest.raises(ImageToolMissing) as missing:
            build_image(config, "test", runtime=runtime)
        text = str(missing.value)
        assert text.startswith("neither Singularity nor Apptainer is available on this "
                               f"machine (no '{runtime}' on PATH)")
        assert "clusters.test has no host" in text
    assert not (tmp_path / "work").exists()  # nothing written

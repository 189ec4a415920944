"""``hpctriton image``: the tritonclient definition file, and building an image from it.

Most sites already have an image with tritonclient (the probe runs on Python 3.8+ with
tritonclient 2.30+), so nothing needs building. For those without one, the definition
file ``hpctriton/tools/tritonclient.def`` (shipped in the wheel) pins the versions CI tests
(:data:`hpctriton.tools.compat.IMAGE`), and :func:`build_image` builds it where Singularity or
Apptainer exists:

* on a cluster's login node over SSH: the definition file is uploaded into the
  cluster's workdir, then ``singularity build [--fakeroot] OUT DEF`` (or ``apptainer
  build``) runs there, after the cluster's prologue (``module load apptainer``);
* on this machine, for a cluster without ``host``: through spython's client when it is
  plain ``singularity`` on PATH, otherwise the same script as over SSH.

Commands are argument lists until the last moment (:func:`build_commands` composes
them without running anything, so they can be shown and tested); the result is the
config line that uses the image. Example::

    from hpctriton.tools.image import build_image
    result = build_image(config, "asgc-slurm", fakeroot=True)
    print(result.config_line)   # container: {image: /home/alice/hpctriton-runs/images/...sif}
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from hpctriton.config import ClusterConfig, Config
from hpctriton.errors import CommandError, RemoteError, UsageError
from hpctriton.shell import quoting
from hpctriton.shell import templates as templating
from hpctriton.tools.compat import IMAGE
from hpctriton.transport import Transport, open_transport

DEF_NAME = "tritonclient.def"
RUNTIMES = ("singularity", "apptainer")
#: Where images go, under the cluster's workdir.
IMAGES_DIR = "images"
#: Default image file name: says which versions it carries.
DEFAULT_IMAGE = f"tritonclient-py{IMAGE.python}-tc{IMAGE.tritonclient}.sif"
#: The definition file's name on the build host (under images/, never beside a user's -o).
UPLOADED_DEF = DEFAULT_IMAGE[:-len(".sif")] + ".def"
#: Exit code of the build script when the container binary is not there.
NOT_FOUND = 127
#: A build downloads a base image and pip packages: allow it time.
BUILD_TIMEOUT_S = 3600.0


class ImageToolMissing(RemoteError):
    """Neither Singularity nor Apptainer can be run where the build was asked for."""

    exit_code = 3


def definition_text() -> str:
    """The text of ``hpctriton/tools/tritonclient.def``, as shipped in the wheel."""
    return resources.files("hpctriton.tools").joinpath(DEF_NAME).read_text(encoding="utf-8")


def build_argv(image: str, definition: str, *, runtime: str = "singularity",
               binary: str | None = None, fakeroot: bool = False,
               force: bool = False) -> list[str]:
    """``[binary, "build", ("--fakeroot"), ("--force"), image, definition]``.

    Example::

        >>> build_argv("/w/images/tc.sif", "/w/images/tritonclient.def", fakeroot=True)
        ['singularity', 'build', '--fakeroot', '/w/images/tc.sif', '/w/images/tritonclient.def']
    """
    if runtime not in RUNTIMES:
        raise UsageError(f"runtime {runtime!r} builds no images; use one of "
                         f"{', '.join(RUNTIMES)}")
    argv = [binary or runtime, "build"]
    if fakeroot:
        argv.append("--fakeroot")
    if force:
        argv.append("--force")
    return [*argv, image, definition]


@dataclass(frozen=True)
class BuildPlan:
    """What :func:`build_image` will do, composed without running anything."""

    #: ``ssh`` (the cluster's login node), ``spython`` or ``local`` (this machine).
    where: str
    #: The build command, e.g. ``["singularity", "build", "--fakeroot", OUT, DEF]``.
    argv: list[str]
    #: Where the definition file goes on the build host, and the image it makes.
    definition: str
    image: str
    #: The bash script run through the transport: prologue, binary check, build.
    script: str
    #: The config line that uses the image.
    config_line: str
    runtime: str


def config_line(image: str, runtime: str = "singularity") -> str:
    """``container: {image: PATH}`` (with ``runtime: apptainer`` when that built it)."""
    value = image if re.fullmatch(r"[A-Za-z0-9_./~+-]+", image) else json.dumps(image)
    runtime_part = f"runtime: {runtime}, " if runtime != "singularity" else ""
    return f"container: {{{runtime_part}image: {value}}}"


def _not_found_hint(binary: str, where: str, cluster_name: str | None) -> str:
    name = cluster_name or "<name>"
    return (f"{binary} was not found on {where}. Set clusters.{name}.container_bin to its "
            f"absolute path, or add the line that provides it to clusters.{name}.prologue "
            "(e.g. 'module load apptainer'); or build elsewhere: hpctriton image def -o "
            f"{DEF_NAME}, then on a machine with Singularity or Apptainer: "
            f"singularity build --fakeroot {DEFAULT_IMAGE} {DEF_NAME}")


def build_commands(cluster: ClusterConfig, *, workdir: str, cluster_name: str | None = None,
                   runtime: str = "singularity", fakeroot: bool = False,
                   output: str | None = None, force: bool = False,
                   use_spython: bool = False, host_label: str = "the build host") -> BuildPlan:
    """Compose the build for ``cluster``; ``workdir`` is its workdir as an absolute path
    on the build host (see ``Transport.resolve``).

    ``output`` (``-o``): absolute, or relative to ``workdir``; default
    ``<workdir>/images/<DEFAULT_IMAGE>``. The definition file is uploaded to
    ``<workdir>/images/<UPLOADED_DEF>``.

    Example::

        plan = build_commands(cluster, workdir="/home/alice/hpctriton-runs", fakeroot=True)
        plan.argv   # ['singularity', 'build', '--fakeroot', '/home/alice/.../x.sif', '...def']
    """
    if not PurePosixPath(workdir).is_absolute():
        raise UsageError(f"the build host's workdir must be absolute, got {workdir!r}")
    image = str(PurePosixPath(workdir) / (output or f"{IMAGES_DIR}/{DEFAULT_IMAGE}"))
    if not image.endswith(".sif"):
        raise UsageError(f"-o {output}: the image file must end in .sif")
    definition = str(PurePosixPath(workdir) / IMAGES_DIR / UPLOADED_DEF)
    binary = cluster.container_bin or runtime
    argv = build_argv(image, definition, runtime=runtime, binary=binary, fakeroot=fakeroot,
                      force=force)
    script = templating.render(
        "hpctriton.tools:build_image.sh.j2",
        prologue=[quoting.one_line(line, "prologue") for line in cluster.prologue],
        binary=binary, hint=_not_found_hint(binary, host_label, cluster_name),
        not_found=NOT_FOUND, image_dir=str(PurePosixPath(image).parent), build_argv=argv,
        image=image)
    where = "ssh" if cluster.host else ("spython" if use_spython else "local")
    return BuildPlan(where=where, argv=argv, definition=definition, image=image,
                     script=script, config_line=config_line(image, runtime),
                     runtime=runtime)


@dataclass(frozen=True)
class BuildResult:
    """A finished build: the plan, where it ran, and what it said."""

    plan: BuildPlan
    host: str
    duration_s: float
    output: str

    @property
    def config_line(self) -> str:
        return self.plan.config_line


def _spython_usable(cluster: ClusterConfig, runtime: str) -> bool:
    """spython runs ``singularity`` from PATH, with no prologue: only then is it used."""
    return (cluster.host is None and runtime == "singularity" and not cluster.container_bin
            and not cluster.prologue and shutil.which("singularity") is not None)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """spython lets the build write to our stdout; keep stdout for results (--json)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _build_with_spython(plan: BuildPlan) -> str:
    from spython.main import Client

    options = [a for a in plan.argv[2:-2] if a != "--force"]
    with _stdout_to_stderr():
        made = Client.build(recipe=plan.definition, image=plan.image, sudo=False,
                            options=options, force="--force" in plan.argv, quiet=True)
    if not made or not os.path.isfile(plan.image) or os.path.getsize(plan.image) == 0:
        raise CommandError(plan.argv, 1, message="the image build failed (its output is "
                                                 "above): " + quoting.join(plan.argv))
    return ""


def _resolve_runtime(config: Config, runtime: str | None) -> str:
    chosen = runtime or (config.container.runtime
                         if config.container.runtime in RUNTIMES else "singularity")
    if chosen not in RUNTIMES:
        raise UsageError(f"--runtime {chosen}: use one of {', '.join(RUNTIMES)}")
    return chosen


def build_image(config: Config, cluster: str | None = None, *, runtime: str | None = None,
                fakeroot: bool = False, output: str | None = None, force: bool = False,
                transport: Transport | None = None, timeout_s: float = BUILD_TIMEOUT_S,
                on_plan: Callable[[BuildPlan], None] | None = None,
                dry_run: bool = False) -> BuildResult:
    """Build the tritonclient image for ``cluster`` (see the module docstring).

    ``runtime`` defaults to the config's container runtime (singularity when it is
    ``none``). ``on_plan`` is called with the composed plan before anything runs (the
    CLI prints the command). ``dry_run`` stops there: nothing is uploaded or built.
    Raises :class:`ImageToolMissing` when neither the binary nor a way to reach it
    exists, ``CommandError`` when the build fails.
    """
    name, cluster_cfg = config.cluster(cluster)
    chosen = _resolve_runtime(config, runtime)
    local = cluster_cfg.host is None
    if local and output is not None and not os.path.isabs(output):
        output = os.path.abspath(output)  # on this machine -o is relative to here
    use_spython = _spython_usable(cluster_cfg, chosen)
    if local and not use_spython:
        binary = cluster_cfg.container_bin or chosen
        if not cluster_cfg.prologue and shutil.which(binary) is None:
            raise ImageToolMissing(
                f"neither Singularity nor Apptainer is available on this machine "
                f"(no {binary!r} on PATH) and clusters.{name} has no host to build on. "
                + _not_found_hint(binary, "this machine", name))
    owned = transport is None
    transport = transport or open_transport(cluster_cfg)
    try:
        workdir = transport.resolve(cluster_cfg.workdir)  # relative = under the home
        plan = build_commands(cluster_cfg, workdir=workdir, cluster_name=name,
                              runtime=chosen, fakeroot=fakeroot, output=output, force=force,
                              use_spython=use_spython, host_label=transport.label)
        if on_plan is not None:
            on_plan(plan)
        if dry_run:
            return BuildResult(plan=plan, host=transport.label, duration_s=0.0, output="")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="hpctriton-image-") as tmp:
            local_def = Path(tmp) / UPLOADED_DEF
            local_def.write_text(definition_text(), encoding="utf-8")
            transport.put_files([(local_def, UPLOADED_DEF)],
                                str(PurePosixPath(plan.definition).parent))
        if use_spython:
            output_text = _build_with_spython(plan)
        else:
            result = transport.run_script(plan.script, timeout=timeout_s)
            if result.exit_code == NOT_FOUND and "was not found on" in result.stderr:
                raise ImageToolMissing(result.stderr.strip())
            result.check(f"building the image on {transport.label}")
            output_text = result.stdout + result.stderr
        return BuildResult(plan=plan, host=transport.label,
                           duration_s=time.monotonic() - started, output=output_text)
    finally:
        if owned:
            transport.close()

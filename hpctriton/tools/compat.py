"""The Python and tritonclient versions the probe is tested with: the single source.

``probe.pyz`` runs on whatever Python and tritonclient the site's image carries, so
CI runs it in one virtual environment per entry of :data:`MATRIX`, against a real
Triton server:

* ``scripts/portability-venvs`` builds the environments (it runs this file as a
  script: ``python3 hpctriton/tools/compat.py venvs`` prints one line per entry);
* ``tests/test_portability.py`` runs a rendered bundle's ``probe.pyz`` in each;
* ``tests/test_singularity_def.py`` checks that ``hpctriton/tools/tritonclient.def``
  pins exactly the :data:`IMAGE` entry, so the image ``hpctriton image`` builds is
  one CI has tested.

Standard library only, and importable without the rest of hpctriton, so the shell
script can read it before anything is installed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

#: The oldest Python ``probe.pyz`` runs on (older ones get a one-line message, exit 2):
#: Debian buster's, the Python of seed 001's ``python_tritonclient_slim-buster.sif``.
PROBE_MIN_PYTHON = (3, 7)
#: The oldest tritonclient the probe is tested with (the Triton 2.18 era of that image).
PROBE_MIN_TRITONCLIENT = "2.18.0"
#: Extras every environment installs: what the probe imports (no shared memory, no aio).
TRITONCLIENT_EXTRAS = "http,grpc"
#: ``python`` of the entry that takes the newest Python available.
NEWEST = "newest"


@dataclass(frozen=True)
class CompatTarget:
    """One environment of the matrix."""

    #: Folder name of the venv (under ``.venv-compat/``) and the test id.
    name: str
    #: ``3.8``-style minor version, or :data:`NEWEST`: the newest interpreter on the
    #: machine that installs tritonclient (newer ones tried first).
    python: str
    #: An exact tritonclient version, or None for the newest release pip finds.
    tritonclient: str | None
    #: An exact numpy version, or None for what pip picks for that Python.
    numpy: str | None = None
    #: Why the entry is in the matrix (shown by the script).
    why: str = ""
    #: An exact protobuf version, or None for what pip picks (tritonclient's own pin).
    protobuf: str | None = None

    def requirements(self) -> list[str]:
        """pip requirement strings for this environment."""
        tc = f"tritonclient[{TRITONCLIENT_EXTRAS}]"
        reqs = [tc + (f"=={self.tritonclient}" if self.tritonclient else ""),
                "numpy" + (f"=={self.numpy}" if self.numpy else "")]
        if self.protobuf:
            reqs.append(f"protobuf=={self.protobuf}")
        return reqs


#: The image's pins: ``hpctriton/tools/tritonclient.def`` must say exactly this.
IMAGE = CompatTarget("py311-tc2.51", "3.11", "2.51.0", "1.26.4",
                     "the pins of hpctriton/tools/tritonclient.def (hpctriton image)")

MATRIX: tuple[CompatTarget, ...] = (
    CompatTarget("py37-tc2.18", "3.7", PROBE_MIN_TRITONCLIENT, None,
                 "seed 001's python_tritonclient_slim-buster.sif: Debian buster's Python 3.7 "
                 "with the tritonclient and protobuf 3.x of 2022", protobuf="3.20.3"),
    CompatTarget("py38-tc2.18", "3.8", PROBE_MIN_TRITONCLIENT, None,
                 "tritonclient 2.18 with the protobuf pip picks today (4.x+: its generated "
                 "code needs the pure-Python protobuf, which the probe switches to)"),
    CompatTarget("py38-tc2.30", "3.8", "2.30.0", None,
                 "the oldest tritonclient with client_timeout on gRPC infer"),
    CompatTarget("py38-tc2.51", "3.8", "2.51.0", None,
                 "the oldest Python with the tritonclient of the test server (2.51)"),
    IMAGE,
    CompatTarget("newest", NEWEST, None, None,
                 "the newest Python here with the newest tritonclient"),
)


def target(name: str) -> CompatTarget:
    """The matrix entry called ``name``; KeyError lists the valid names."""
    for entry in MATRIX:
        if entry.name == name:
            return entry
    raise KeyError(f"{name!r} is not in the matrix ({', '.join(e.name for e in MATRIX)})")


def _print_venvs() -> None:
    # name|python|requirement requirement...: read by scripts/portability-venvs.
    for entry in MATRIX:
        print("|".join([entry.name, entry.python, " ".join(entry.requirements())]))


if __name__ == "__main__":
    if sys.argv[1:] != ["venvs"]:
        sys.exit("usage: python3 hpctriton/tools/compat.py venvs")
    _print_venvs()

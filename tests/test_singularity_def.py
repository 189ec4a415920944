"""The definition file pins what CI tests: read with spython's recipe parser and
compared with the IMAGE entry of hpctriton/compat.py (which the portability matrix
builds a venv for and runs probe.pyz in)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from spython.main.parse.parsers import SingularityParser

from hpctriton.tools.compat import IMAGE, MATRIX, PROBE_MIN_PYTHON

DEF_FILE = Path(__file__).resolve().parent.parent / "hpctriton" / "tools" / "tritonclient.def"


@pytest.fixture(scope="module")
def recipe() -> Any:
    return list(SingularityParser(str(DEF_FILE)).recipe.values())[0]


def _labels(recipe: Any) -> dict[str, str]:
    return dict(line.split(None, 1) for line in recipe.labels)


def test_the_base_image_is_the_python_the_matrix_tests(recipe: Any) -> None:
    match = re.fullmatch(r"python:(\d+\.\d+)-slim-[a-z]+", recipe.fromHeader)
    assert match, recipe.fromHeader
    assert match.group(1) == IMAGE.python
    assert tuple(int(x) for x in IMAGE.python.split(".")) >= PROBE_MIN_PYTHON
    assert IMAGE in MATRIX


def test_labels_carry_the_tested_versions(recipe: Any) -> None:
    labels = _labels(recipe)
    assert labels["io.hpctriton.python.version"] == IMAGE.python
    assert labels["io.hpctriton.tritonclient.version"] == IMAGE.tritonclient
    assert labels["io.hpctriton.numpy.version"] == IMAGE.numpy


def test_post_installs_exactly_the_tested_tritonclient_and_numpy(recipe: Any) -> None:
    pip = [line for line in recipe.install if "pip install" in line]
    assert len(pip) == 1, recipe.install
    pins = dict(re.findall(r'"?([A-Za-z0-9_.\[\],-]+)==([0-9][^" ]*)"?', pip[0]))
    assert pins == {"tritonclient[all]": IMAGE.tritonclient, "numpy": IMAGE.numpy}


def test_the_test_section_imports_tritonclient(recipe: Any) -> None:
    # spython turns %test into a /tests.sh written during %post and run as the test.
    assert recipe.test == "/bin/bash /tests.sh"
    written = " ".join(line for line in recipe.install if "/tests.sh" in line)
    assert "import tritonclient.http, tritonclient.grpc, numpy" in written

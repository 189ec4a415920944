"""What a test does when a real service cannot be had.

On a laptop without root a real-service test may skip; under CI (``CI=true``) a skip of
a real-service test is a failure, so CI can never pass by skipping.
"""

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def unavailable(service: str, why: str) -> None:
    """Skip (or, in CI, fail) the calling test: ``service`` could not be started."""
    message = f"{service} unavailable: {why}"
    if in_ci():
        pytest.fail(message + " (CI=true: real-service tests must run, not skip)")
    pytest.skip(message)

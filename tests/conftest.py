"""Session-wide fixtures: real services are started once per test session."""

from fixtures_services import *  # noqa: F403 - pytest fixtures for sshd and Slurm
from fixtures_triton import *  # noqa: F403 - pytest fixtures for the Triton server

"""``python -m hpctriton``: the same as the ``hpctriton`` command."""

from .cli import main

main()

"""``python -m hpctriton``: the same as the ``hpctriton`` command."""

from hpctriton.cli import main

main()

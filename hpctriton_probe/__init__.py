"""The probe that runs inside every hpctriton job.

A package of its own, shipped as ``probe.pyz``: it imports nothing but the standard
library, tritonclient and numpy (lazily, from the interpreter's site-packages), and
runs on Python 3.7 and newer.
"""

__version__ = "0.1.0"

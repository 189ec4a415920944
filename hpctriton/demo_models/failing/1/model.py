"""Every request fails: ``execute`` raises, as a broken model would.

Triton counts these as failed requests in its statistics and metrics (an error
*response* from a Python model would count as a success).
"""

MESSAGE = "failing: this model fails every request on purpose"


class TritonPythonModel:
    def execute(self, requests):
        raise RuntimeError(MESSAGE)

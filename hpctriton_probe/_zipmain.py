# The __main__.py of probe.pyz. Parseable by Python 2.7 and 3.6 (no f-strings, no
# annotations) so that an old interpreter prints one line and exits 2 instead of
# failing with a SyntaxError inside the package.
import sys

if sys.version_info < (3, 8):
    sys.stderr.write(
        "hpctriton probe needs Python 3.8 or newer; this is %d.%d (%s): use "
        "container.python / cluster python to pick another interpreter\n"
        % (sys.version_info[0], sys.version_info[1], sys.executable)
    )
    sys.exit(2)

from hpctriton_probe.cli import main  # noqa: E402 - only after the version check

sys.exit(main())

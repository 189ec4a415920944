"""The one small tree of errors hpctriton raises.

    HpctritonError                  base; ``exit_code`` says what the CLI exits with
    ├── ConfigError                 bad config, bad --set, bad input file (exit 2)
    ├── UsageError                  bad combination of arguments (exit 2)
    │   └── FolderBusy              another command holds the folder's lock (runs.lock)
    ├── RenderError                 a value cannot be put safely into a script (exit 2)
    ├── RunNotFound                 no such run record (exit 2)
    │   └── DamagedRecord           a run record that cannot be used: file and field
    │                               (runs.record)
    └── RemoteError                 SSH, scheduler or remote command failed (exit 3)
        ├── TransportError          could not connect / authenticate / host key
        │   └── HostKeyError        unknown or mismatched host key
        ├── CommandError            a remote command failed (command, exit code, stderr)
        ├── PartialSubmitError      some submissions were made before one failed
        └── CollectError            results could not be fetched or did not verify
            └── CollectIncomplete   some tasks were accepted, others not; carries the
                                    collect's report (runs.collect)

Only the CLI catches them, prints them plainly and picks the exit code. ``transient``
tells a caller whether trying again may help. The three that carry what only their
own layer knows live in that layer's module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class HpctritonError(Exception):
    """Base of every error hpctriton raises on purpose."""

    exit_code = 2
    transient = False


class ConfigError(HpctritonError):
    """The config file, an override or a referenced file is not valid.

    ``source`` is the file (or the ``--set`` argument or flag that gave the value),
    ``field`` the dotted path, ``line`` the YAML line when known. ``also`` holds the
    other errors found in the same pass, each with its own place: the message is one
    ``source:line: field: detail`` line per error, so one run shows every error.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        field: str | None = None,
        line: int | None = None,
        also: Sequence[ConfigError] = (),
    ) -> None:
        self.source, self.field, self.line, self.detail = source, field, line, message
        self.also: tuple[ConfigError, ...] = tuple(also)
        super().__init__("\n".join([self.one_line(), *(str(e) for e in self.also)]))

    def one_line(self) -> str:
        """This error alone (without ``also``): ``source:line: field: detail``."""
        where = self.source or ""
        if self.line is not None:
            where += f":{self.line}"
        prefix = ": ".join(p for p in (where, self.field) if p)
        return f"{prefix}: {self.detail}" if prefix else self.detail

    def located(self, source: str | None, line: int | None) -> ConfigError:
        """The same error (and its ``also``) placed in ``source`` at ``line``."""
        return ConfigError(self.detail, source=source, field=self.field, line=line,
                           also=self.also)


class UsageError(HpctritonError):
    """The command line asks for something that cannot be done."""


class RenderError(HpctritonError):
    """A value cannot be rendered safely into a job script."""


class RunNotFound(HpctritonError):
    """No run record with that id (or no runs at all)."""


class RemoteError(HpctritonError):
    """Something on the cluster side failed."""

    exit_code = 3


class TransportError(RemoteError):
    """Could not reach or log in to the remote host."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class HostKeyError(TransportError):
    """The host key is unknown (and accept-new not asked) or does not match."""


class CommandError(RemoteError):
    """A command exited non-zero; carries what the user needs to see."""

    def __init__(
        self,
        argv: Sequence[str] | str,
        exit_code: int,
        stdout: str = "",
        stderr: str = "",
        *,
        message: str | None = None,
        transient: bool = False,
    ) -> None:
        self.argv, self.returncode, self.stdout, self.stderr = argv, exit_code, stdout, stderr
        self.transient = transient
        cmd = argv if isinstance(argv, str) else " ".join(argv)
        text = message or f"command failed with exit code {exit_code}: {cmd}"
        tail = (stderr or stdout).strip()
        if tail:
            text += "\n" + "\n".join("  " + ln for ln in tail.splitlines()[-20:])
        super().__init__(text)


class PartialSubmitError(RemoteError):
    """A submission failed after earlier ones (of the same run) succeeded."""

    def __init__(self, message: str, made: list[Any]) -> None:
        super().__init__(message)
        self.made = made


class CollectError(RemoteError):
    """Results could not be fetched, or fetched files did not match their manifest."""

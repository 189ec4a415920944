"""known_hosts read the way OpenSSH reads it, for one host name.

paramiko's own reader stops at the first line it cannot parse (a ``@cert-authority``
line, a key in a format it does not know, a typo) with ``InvalidHostKey``, where OpenSSH
skips such a line and goes on. This reader does what OpenSSH does:

* blank lines and ``#`` comments are skipped; fields are split on any whitespace;
* host patterns: comma-separated, ``*`` and ``?`` wildcards, ``!`` negation (a negated
  match rules the line out), case-insensitive, ``[host]:port`` for other ports; hashed
  names (``|1|salt|hash``, ``HashKnownHosts yes``);
* ``@revoked`` keys are refused even if listed elsewhere;
* ``@cert-authority`` lines are noted but cannot be used: paramiko does not verify host
  certificates, so a host known only through a CA needs its own key added (the error
  message says so);
* a line that cannot be used (too few fields, bad base64, unknown key type, unknown
  marker) is skipped, with the file and line logged at debug level.

The global files (``/etc/ssh/ssh_known_hosts``, ``ssh_known_hosts2``, or
``GlobalKnownHostsFile``) are read after the user's, as OpenSSH reads them.

Example::

    >>> found = lookup(["~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"], "[login]:2222")
    >>> [k.get_name() for k in found.keys]
    ['ssh-ed25519']
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import paramiko

log = logging.getLogger("hpctriton.transport.known_hosts")

#: OpenSSH's default global known_hosts files.
GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


@dataclass
class KnownHost:
    """What the known_hosts files say about one host name."""

    keys: list[paramiko.PKey] = field(default_factory=list)
    revoked: list[paramiko.PKey] = field(default_factory=list)
    #: ``file:line`` of ``@cert-authority`` lines for this host (unusable with paramiko).
    cert_authorities: list[str] = field(default_factory=list)
    #: ``file:line: why`` of lines that could not be used.
    skipped: list[str] = field(default_factory=list)


def _pattern(glob: str) -> re.Pattern[str]:
    """An OpenSSH host pattern (only ``*`` and ``?`` are special) as a regex."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _hashed_match(name: str, entry: str) -> bool:
    """``|1|base64(salt)|base64(hmac-sha1(salt, name))``."""
    try:
        _, _, salt, digest = entry.split("|", 3)
        expected = hmac.new(base64.b64decode(salt), name.encode(), hashlib.sha1).digest()
        return hmac.compare_digest(expected, base64.b64decode(digest))
    except (ValueError, binascii.Error):
        return False


def host_matches(name: str, patterns: str) -> bool:
    """Whether the host field of a known_hosts line applies to ``name``.

    Example::

        >>> host_matches("[login]:2222", "login,[login]:2222")
        True
        >>> host_matches("node7", "node*,!node7")
        False
    """
    if patterns.startswith("|1|"):
        return _hashed_match(name, patterns)
    matched = False
    for pattern in patterns.split(","):
        negated = pattern.startswith("!")
        if _pattern(pattern[1:] if negated else pattern).fullmatch(name):
            if negated:
                return False
            matched = True
    return matched


def lookup(files: Sequence[str], name: str) -> KnownHost:
    """Every usable key for ``name`` in ``files`` (missing files are skipped)."""
    found = KnownHost()
    for file in files:
        path = os.path.expanduser(file)
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                lines = fh.readlines()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot read known_hosts %s: %s", path, exc)
            continue
        for number, raw in enumerate(lines, 1):
            _line(raw, f"{path}:{number}", name, found)
    for skipped in found.skipped:
        log.debug("known_hosts: skipped %s", skipped)
    return found


def _line(raw: str, where: str, name: str, found: KnownHost) -> None:
    fields = raw.split()
    if not fields or fields[0].startswith("#"):
        return
    marker = fields.pop(0) if fields[0].startswith("@") else None
    if marker not in (None, "@cert-authority", "@revoked"):
        found.skipped.append(f"{where}: unknown marker {marker}")
        return
    if len(fields) < 3:
        found.skipped.append(f"{where}: not enough fields")
        return
    hosts, key_type, blob = fields[:3]
    if not host_matches(name, hosts):
        return
    if marker == "@cert-authority":
        found.cert_authorities.append(where)
        return
    try:
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(blob, validate=True))
    except Exception as exc:  # noqa: BLE001 - any unusable key is skipped, as OpenSSH does
        found.skipped.append(f"{where}: unusable {key_type} key ({type(exc).__name__})")
        return
    (found.revoked if marker == "@revoked" else found.keys).append(key)

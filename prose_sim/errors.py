"""Errors that the CLI turns into one clear line and exit code 2."""

from __future__ import annotations

import re


class UsageError(Exception):
    """Bad input from the user: a scenario, a path, an option. Exit code 2."""


class ScenarioError(UsageError):
    """A scenario that cannot run, naming its file, the key and the reason."""

    def __init__(self, origin: str, key: str, reason: str):
        self.origin, self.key, self.reason = origin, key, reason
        where = f"{origin}: {key}" if key else origin
        super().__init__(f"{where}: {reason}")


# --- msgspec validation messages, as (key path, reason) -----------------------

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")


def explain_validation(message: str) -> tuple[str, str]:
    """Turn msgspec's message into (key path, reason)."""
    match = _AT.match(message)
    msg, path = match["msg"], (match["path"] or "")
    key = re.sub(r"^\.", "", path)
    for pattern, reason in ((_UNKNOWN, "unknown key"), (_MISSING, "required key is missing")):
        found = pattern.match(msg)
        if found:
            return (f"{key}.{found['field']}" if key else found["field"]), reason
    return key or "(top level)", msg[0].lower() + msg[1:]


class RunIOError(Exception):
    """A file of the run could not be written (a full disk, a lost mount, no permission).

    The CLI prints it as one line naming the path and the error, exit code 1.
    """

    def __init__(self, path: object, exc: OSError):
        self.path, self.errno = str(path), exc.errno
        reason = exc.strerror or str(exc)
        code = f"[Errno {exc.errno}] " if exc.errno else ""
        super().__init__(f"{path}: cannot write: {code}{reason}")

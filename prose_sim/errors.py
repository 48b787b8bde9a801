"""Every exception prose_sim raises on purpose, and the one way to print one as a line.

The tree (what a caller can catch, and what it means)::

    Exception
    ├── UsageError                  bad input from the user: a scenario, a path, an option
    │   └── ScenarioError           a scenario that does not load, naming its file and key
    ├── RunIOError                  a file of the run could not be written
    ├── RunStopping                 the run is being stopped: this model call ends unrecorded
    ├── ModelCallFailed             a model call failed after every retry: its step fails
    ├── ModelCallError              a backend failure, classified for the gateway's retries
    │   ├── RetryableModelError     5xx, a timeout, a dropped connection
    │   │   ├── UnreachableError    the connection could not be made at all
    │   │   ├── InjectedFailure     made up by the fault injector
    │   │   └── LocalStepFailed     a local server's iteration failed with its requests
    │   ├── RateLimitedError        the provider answered 429
    │   ├── PermanentModelError     retrying cannot help (400, ...)
    │   │   ├── FatalModelError     no call to this endpoint can succeed (401, 403, 404)
    │   │   ├── LocalRequestRejected  a request the local model cannot take
    │   │   └── LocalServerDown     the local model server has stopped working
    │   └── NotRecorded             a replay asked for an answer its log does not hold
    └── ValueError
        └── PromptTooLong           a prompt longer than the local model's context

The CLI prints a ``UsageError`` as one line with exit code 2 and a ``RunIOError``
as one line with exit code 1. A ``ModelCallError`` never leaves the gateway: it
is retried or recorded as a failed call, which the asking step sees as
``ModelCallFailed``.
"""

from __future__ import annotations

import re

from prose_sim.scrub import scrub


def describe_error(exc: BaseException, limit: int = 300, *, with_type: bool = True) -> str:
    """An error as one line of at most ``limit`` characters, for events and messages.

    ``Type: first line of its message`` (only the message with ``with_type=False``;
    the type's name when there is no message). A task group holding one error is
    named by that error, not by the group. Every secret the run read is masked in
    the whole message before it is cut (a cut key would no longer be recognised).
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    text = scrub(str(exc)).strip()
    message = text.splitlines()[0].strip() if text else ""
    if not message and isinstance(exc, TimeoutError):  # anyio's deadline says nothing
        message = "the attempt timed out"
    name = type(exc).__name__
    if not message:
        line = name
    else:
        line = f"{name}: {message}" if with_type else message
    return cut(line, limit)


def cut(text: str, limit: int) -> str:
    """``text`` scrubbed of secrets, then cut to at most ``limit`` characters (``...`` marking
    the cut): the one way persisted text is shortened."""
    text = scrub(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ----------------------------------------------------------------------------- the user's errors


class UsageError(Exception):
    """Bad input from the user: a scenario, a path, an option. Exit code 2."""


class ScenarioError(UsageError):
    """A scenario that cannot run, naming its file, the key and the reason."""

    def __init__(self, origin: str, key: str, reason: str):
        self.origin, self.key, self.reason = origin, key, reason
        where = f"{origin}: {key}" if key else origin
        super().__init__(f"{where}: {reason}")


class RunIOError(Exception):
    """A file of the run could not be written (a full disk, a lost mount, no permission).

    The CLI prints it as one line naming the path and the error, exit code 1.
    """

    def __init__(self, path: object, exc: OSError):
        self.path, self.errno = str(path), exc.errno
        reason = exc.strerror or str(exc)
        code = f"[Errno {exc.errno}] " if exc.errno else ""
        super().__init__(f"{path}: cannot write: {code}{reason}")


class MetricFailed(Exception):
    """A metric job (``metrics.offloop``) raised: its message is that error as "Type: message",
    the same whether the job ran in the worker thread or the worker process. The judge records
    a failed step."""


# ----------------------------------------------------------------------------- model calls


class RunStopping(Exception):
    """The run is being stopped (the gateway's ``on_stop`` was called): this call ends unrecorded."""


class ModelCallFailed(Exception):
    """A request failed after every retry. The caller records a failed step."""


class ModelCallError(Exception):
    """A backend failure classified for the gateway's retries.

    ``retryable``: worth another attempt (429, 5xx, timeouts, dropped
    connections); ``throttled``: the provider asked us to slow down (429);
    ``retry_after``: seconds the provider asked us to wait, if it said.
    Other exceptions a backend raises are retried as well.
    """

    retryable = True
    throttled = False
    # retrying, or going on with other calls, cannot help (401, 403, 404): stop the run
    fatal = False
    # the endpoint could not be reached at all (refused, no such host): fatal before
    # the endpoint has answered once, retried after (a blip)
    unreachable = False

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RetryableModelError(ModelCallError):
    """5xx, a timeout or a dropped connection."""


class RateLimitedError(ModelCallError):
    """The provider answered 429."""

    throttled = True


class PermanentModelError(ModelCallError):
    """Retrying cannot help (400, 401, 403, 404, ...)."""

    retryable = False


class FatalModelError(PermanentModelError):
    """No call to this endpoint can succeed: a wrong key (401), no permission (403), an
    unknown model or path (404). The gateway stops the run at the first one."""

    fatal = True


class UnreachableError(RetryableModelError):
    """The connection could not be made (refused, unknown host)."""

    unreachable = True


class InjectedFailure(RetryableModelError):
    """A failure the fault injector made up."""


class NotRecorded(ModelCallError):
    """A replayed run asked for something the log does not hold: the run diverged."""

    retryable = False


class LocalRequestRejected(PermanentModelError):
    """This one request cannot be served (e.g. its prompt exceeds the model's context)."""


class LocalStepFailed(RetryableModelError):
    """A scheduler iteration failed; every request in flight in it failed with it."""


class LocalServerDown(PermanentModelError):
    """The local model server has stopped working; no request can be served."""


class PromptTooLong(ValueError):
    """The prompt does not fit the model's context window."""


# --- msgspec validation messages, as (key path, reason) -----------------------

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`")


def explain_validation(message: str) -> tuple[str, str]:
    """Turn msgspec's message into (key path, reason)."""
    match = _AT.match(message)
    assert match is not None  # the pattern matches any text
    msg, path = match["msg"], (match["path"] or "")
    key = re.sub(r"^\.", "", path)
    for pattern, reason in ((_UNKNOWN, "unknown key"), (_MISSING, "required key is missing")):
        found = pattern.match(msg)
        if found:
            return (f"{key}.{found['field']}" if key else found["field"]), reason
    return key or "(top level)", msg[0].lower() + msg[1:]

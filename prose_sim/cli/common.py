"""What every command shares: the exit codes, the console, the early-signal exception, the
options several commands take (``--set``, ``--progress``)."""

from __future__ import annotations

import signal
import sys

from rich.console import Console

EXIT_OK, EXIT_RUN_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
# run: the [budget] was reached and the run stopped there (resumable, with a raised budget)
EXIT_BUDGET = 3


def add_overrides(parser, help: str) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def add_progress(parser) -> None:
    """``--progress auto|bar|log|off`` into ``args.progress``."""
    parser.add_argument(
        "--progress",
        choices=["auto", "bar", "log", "off"],
        default="auto",
        help="progress display (auto: a bar on a terminal, log lines otherwise)",
    )


def console() -> Console:
    """Rich console; wide enough for the tables when output is not a terminal."""
    return Console(width=None if sys.stdout.isatty() else 160)


class Signalled(BaseException):
    """SIGTERM or SIGHUP before the run's own handling began (e.g. while models load)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum, self.name = signum, signal.Signals(signum).name

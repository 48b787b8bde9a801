"""Command line: ``python -m prose_sim <command>`` (also installed as ``prose-sim``).

Exit codes: 0 success; 1 a run with failed task instances, stopped by the
circuit breaker or by an I/O error (a full disk); 2 bad input or a fatal model
error (a wrong key, an unknown model, an unreachable endpoint), one line on
stderr, no traceback; 3 the run's ``[budget]`` was reached (resumable with a raised
budget); 128 + the signal's number when stopped by a signal (130 SIGINT, 143 SIGTERM,
129 SIGHUP).

One module per command group (``run``; ``replay`` with ``merge`` and ``rescore``; ``outputs``: report,
prompts, view, export; ``catalog``: personas, methods, corpus), each adding its commands to
the parser; this module builds the parser and runs the chosen command. The benchmarks are
not a command: ``python -m benchmarks`` in a source checkout (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO, cast

import structlog

from prose_sim import __version__
from prose_sim.cli.catalog import add_corpus, add_methods, add_personas
from prose_sim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_RUN_FAILED,
    Signalled,
)
from prose_sim.cli.outputs import add_prompts, add_report, add_view_and_export
from prose_sim.cli.replay import add_merge, add_replay, add_rescore
from prose_sim.cli.run import add_run
from prose_sim.errors import RunIOError, UsageError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prose-sim",
        description="Simulate learning users' writing preferences from their writing samples.",
    )
    parser.add_argument("--version", action="version", version=f"prose_sim {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    # the order of `prose-sim --help`
    add_run(commands)
    add_merge(commands)
    add_replay(commands)
    add_rescore(commands)
    add_report(commands)
    add_personas(commands)
    add_methods(commands)
    add_prompts(commands)
    add_view_and_export(commands)
    add_corpus(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging()
    try:
        return args.handler(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunIOError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_RUN_FAILED
    except Signalled as exc:
        print(f"{exc.name}: stopped before the run began", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # output piped into e.g. `head`
        sys.stderr.close()
        return EXIT_OK
    except OSError as exc:  # a file that could not be written (a full disk) or read
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return EXIT_RUN_FAILED


def _configure_logging() -> None:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=True,
    )


class _CurrentStderr:
    """Whatever sys.stderr is when a line is written (it may be swapped, e.g. by tests)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

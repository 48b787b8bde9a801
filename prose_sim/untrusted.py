"""Model answers and what a run folder brings are untrusted text: made safe where they go.

- a terminal: control characters are stripped (an answer's escape sequences would set
  the window's title, clear the screen or hide what follows), newlines and tabs kept;
- a spreadsheet: a CSV cell that a spreadsheet would evaluate as a formula (starting
  with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) gets a leading ``'``, as
  OWASP's CSV-injection guidance recommends; the csv module quotes the rest. Numbers are
  left as they are, so ordinary files stay byte for byte what they were;
- a Markdown table cell: a newline or ``|`` would break the table and raw HTML would
  pass through a renderer, so cells are put on one line with ``|`` and ``<``, ``>``,
  ``&`` escaped.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and the C1 controls (CSI is U+009B)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)")


def terminal_text(text: str) -> str:
    """``text`` with every control character but newline and tab removed."""
    return _CONTROL.sub("", text)


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a string that starts a formula gets a ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(row: dict[str, object]) -> dict[str, object]:
    return {key: csv_cell(value) for key, value in row.items()}


def markdown_cell(text: object) -> str:
    """``text`` as one Markdown table cell: one line, ``|`` and HTML escaped."""
    line = " ".join(terminal_text(str(text)).split())
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return line.replace("|", "\\|")

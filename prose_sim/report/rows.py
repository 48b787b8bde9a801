"""The rows the report reads: one per task instance, column -> value, as ``results.csv`` has them.

A row mixes text (task, method, status), integers (seed, calls, tokens) and floats (the
metrics), so its values are ``object``; ``number`` reads one cell as a float, checking
that it is one, so each table says which cells it does arithmetic on.
"""

from __future__ import annotations

Row = dict[str, object]


def number(row: Row, key: str) -> float:
    """The cell ``key`` as a float (an int, a float or a numeric string)."""
    value = row[key]
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"{key} = {value!r}: not a number")

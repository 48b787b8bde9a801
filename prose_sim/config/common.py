"""What every settings table shares: strictness and the constrained number types."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Framework = Literal["plume", "prelude", "prelude.no_edit"]
Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
# the longest scenario name or method label (they go into file names, with a time stamp)
NAME_MAX = 64
# a method label: it goes into results.csv, report.md and file names as it is
LABEL_PATTERN = r"[A-Za-z0-9_.+-]+"


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Base for scenario tables: unknown keys are errors."""

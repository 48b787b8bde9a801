"""How the report compares methods: the scenario's ``[report]`` table."""

from __future__ import annotations

import msgspec


class ReportSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # the method label every other method is compared with in the report's paired
    # comparisons ("": every pair of methods); it changes the report only, never the run
    baseline: str = ""

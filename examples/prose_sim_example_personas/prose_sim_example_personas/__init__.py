"""An example prose_sim persona plugin.

prose_sim calls ``personas()`` (named in this package's ``prose_sim.personas``
entry point) and gets persona tables: the same keys as a persona TOML file.
Here they come from ``personas.toml``, with the custom template's path made
absolute so it is found wherever the package is installed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def personas() -> list[dict]:
    tables = tomllib.loads((HERE / "personas.toml").read_text(encoding="utf-8"))["persona"]
    for table in tables:
        template = table.get("behaviour", {}).get("template", "")
        if template.endswith(".j2"):
            table["behaviour"]["template"] = str(HERE / template)
    return tables

"""Whether an optional extra's packages are installed, found without importing them.

A missing one is a UsageError that names the command installing it, so
importing prose_sim (and running scripted scenarios) never needs torch.
"""

from __future__ import annotations

import importlib.util

from prose_sim.errors import UsageError

INSTALL_LOCAL = "pip install 'prose-sim[local]'"


def require(modules: tuple[str, ...], what: str) -> None:
    """Raise naming ``what`` needs them when any of ``modules`` is not installed."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"{what} needs {', '.join(missing)}: pip install {' '.join(missing)} "
            f"(or {INSTALL_LOCAL})"
        )


def require_torch() -> None:
    """Local models need torch and transformers (the ``local`` extra)."""
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(f"local models need {' and '.join(missing)}: {INSTALL_LOCAL}")

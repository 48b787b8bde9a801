"""prose_sim: an async, event-driven simulator for learning writing preferences."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "open_run"]

if TYPE_CHECKING:
    from prose_sim.api import open_run


def __getattr__(name: str) -> Any:
    """``open_run``, imported on first use: ``import prose_sim`` stays light."""
    if name == "open_run":
        from prose_sim.api import open_run

        return open_run
    raise AttributeError(f"module 'prose_sim' has no attribute {name!r}")

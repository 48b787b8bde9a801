"""prose_sim: an async, event-driven simulator for learning writing preferences."""

__version__ = "0.1.0"

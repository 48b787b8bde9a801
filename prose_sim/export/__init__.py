"""Exports of a finished run to experiment trackers (one module per tracker)."""

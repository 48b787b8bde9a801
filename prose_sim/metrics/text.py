"""Metrics that need no model."""

from __future__ import annotations

from rapidfuzz.distance import Levenshtein


def word_levenshtein(a: str, b: str) -> tuple[int, float]:
    """Word-level edit distance, raw and normalized by the longer text's word count."""
    wa, wb = a.split(), b.split()
    distance = Levenshtein.distance(wa, wb)
    longest = max(len(wa), len(wb))
    return distance, (distance / longest if longest else 0.0)

"""Metrics that need no model."""

from __future__ import annotations

from prose_sim.metrics.text import word_levenshtein


def test_identical_texts_have_distance_zero():
    assert word_levenshtein("a b c", "a  b\nc") == (0, 0.0)


def test_one_substitution_among_four_words():
    assert word_levenshtein("the cat sat down", "the dog sat down") == (1, 0.25)


def test_normalized_by_the_longer_text():
    distance, normalized = word_levenshtein("a b", "a b c d")
    assert (distance, normalized) == (2, 0.5)


def test_distance_counts_words_not_characters():
    assert word_levenshtein("internationalization", "internationalisation")[0] == 1


def test_empty_texts():
    assert word_levenshtein("", "") == (0, 0.0)
    assert word_levenshtein("", "one two") == (2, 1.0)

"""The metrics of a scored instance that need no model, as one pure function.

``text_metrics`` takes only strings and flags and returns only plain numbers, so it runs
wherever the run puts it (``metrics.offloop``: a worker thread, or the worker process of
``metrics.worker``) and gives the same answer there.
"""

from __future__ import annotations

from collections.abc import Sequence

from prose_sim.metrics.text import word_levenshtein
from prose_sim.metrics.verifiable import checker_for
from prose_sim.parsing import split_preferences

# What the released code scores when the agent has inferred nothing (its empty
# preference set's string falls back to "None").
NO_PREFERENCES = "None"

# text_metrics' answer: (text metrics, the draft's component checks, verifiable shares)
TextMetrics = tuple[dict[str, float], dict[str, bool], dict[str, float]]


def component_checks(components: Sequence[str], text: str) -> dict[str, bool]:
    """Each checkable component -> whether ``text`` satisfies it."""
    return {c: k.check(text) for c in components if (k := checker_for(c)) is not None}


def verifiable_share(components: Sequence[str], text: str) -> float | None:
    """The share of checkable components ``text`` satisfies (None: none is checkable)."""
    checks = component_checks(components, text)
    return sum(checks.values()) / len(checks) if checks else None


def true_components_share(components: Sequence[str], preferences: str) -> float:
    """The share of the user's true components that the preference string names verbatim
    (case-insensitive): the metric-validity study's "share of true components given"."""
    given = {c.casefold() for c in split_preferences(preferences)}
    return sum(c.casefold() in given for c in components) / len(components) if components else 0.0


def text_metrics(
    draft: str, user_text: str, components: Sequence[str], preferences: str, verifiable: bool
) -> TextMetrics:
    """The metrics that need no model: (Levenshtein, preference length and share of true
    components), the component checks of the draft (component -> passes, when ``verifiable``;
    reused by the PPCM verdicts) and the verifiable shares of draft and user text."""
    distance, normalized = word_levenshtein(draft, user_text)
    metrics = {
        "levenshtein": float(distance),
        "levenshtein_norm": normalized,
        "preference_length": float(len(preferences or NO_PREFERENCES)),
        "true_components_share": true_components_share(components, preferences),
    }
    checked = component_checks(components, draft) if verifiable else {}
    shares: dict[str, float] = {}
    if checked:
        shares["verifiable_share"] = sum(checked.values()) / len(checked)
        user_share = verifiable_share(components, user_text)
        if user_share is not None:  # always, as the same components are checked
            shares["user_verifiable_share"] = user_share
    return metrics, checked, shares

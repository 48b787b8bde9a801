"""The 5-point verdict scales of PROSE validation and the judge (design section 3, 5).

Each scale maps the keyword a model is asked to answer with to its score.
Prompts, parsers and the scripted backend all read them from here.
"""

from __future__ import annotations

VALIDATION_SCALE: dict[str, int] = {
    "strongly confirms": 2,
    "somewhat confirms": 1,
    "neutral": 0,
    "somewhat contradicts": -1,
    "strongly contradicts": -2,
}

# The judge's scales carry the released code's full option labels
# (tasks/writing/writing_quality_assesor.py), in the order its prompts list them and its
# parser tries them (best first).
PPCM_SCALE: dict[str, int] = {
    "clearly exhibits": 2,
    "somewhat exhibits": 1,
    "neither exhibits nor contradicts": 0,
    "somewhat contradicts": -1,
    "clearly contradicts": -2,
}

FPM_SCALE: dict[str, int] = {
    "exhibits all preferences": 2,
    "exhibits most preferences": 1,
    "exhibits some preferences": 0,
    "exhibits few preferences": -1,
    "exhibits none of the preferences": -2,
}

# What the released FPM parser looks for in the verdict line, in its order
# (score_adherence_to_compound_preference): the labels without "exhibits", so an answer
# "Verdict: most preferences" scores 1 there. PPCM and similarity look for the full labels.
FPM_RELEASED_KEYS: dict[str, int] = {
    "all preferences": 2,
    "most preferences": 1,
    "some preferences": 0,
    "few preferences": -1,
    "none of the preferences": -2,
}

SIMILARITY_RANGE: tuple[int, int] = (0, 4)

# The released code's preference-similarity labels (score_preference_similarity).
SIMILARITY_SCALE: dict[str, int] = {
    "extremely similar": 4,
    "very similar": 3,
    "moderately similar": 2,
    "slightly similar": 1,
    "not at all similar": 0,
}

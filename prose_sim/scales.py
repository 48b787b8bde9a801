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

PPCM_SCALE: dict[str, int] = {
    "clearly exhibits": 2,
    "somewhat exhibits": 1,
    "neither": 0,
    "somewhat contradicts": -1,
    "clearly contradicts": -2,
}

FPM_SCALE: dict[str, int] = {
    "all": 2,
    "most": 1,
    "some": 0,
    "few": -1,
    "none": -2,
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

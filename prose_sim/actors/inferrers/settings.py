"""Method settings: one flat table per method in a scenario.

Every knob of every method lives here, unset (None) by default; each method
declares which knobs it takes, so a knob given to the wrong method is an error
at load. Unset knobs take the method's (or the named variant's, or the agent
model's) default when the inferrer starts.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

RetrievalMode = Literal["exact_match", "most_recent", "cosine_sim", "bertscore"]
CandidateType = Literal["iterate", "single", "none"]
Breakdown = Literal["after_refinement", "each_iteration", "never"]
Count = Annotated[int, msgspec.Meta(ge=1)]


class MethodSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # the inference method; default: the scenario table's own name
    method: str | None = None
    # which earlier instances a method may draw on (the paper's default: exact_match,
    # i.e. only this user's, most recent first)
    retrieval_mode: RetrievalMode = "exact_match"
    # icl: number of (document, user text) examples shown (default 5)
    num_examples: Count | None = None
    # icl and prose's use_icl: which document each example shows: "own" (its own; the
    # default) or "current" (the document being worked on, as the released code's prompt does)
    icl_example_document: Literal["own", "current"] | None = None
    # cipher: number of retrieved preferences merged (cipher1: 1, cipherN: 3)
    num_merged: Count | None = None
    # prose: a named variant of the paper (full, nv, sc, 1sc, 1nc, 1sc_ap_nv, full+icl)
    variant: str | None = None
    candidate_type: CandidateType | None = None
    num_refinement_steps: Count | None = None
    do_validate: bool | None = None
    breakdown: Breakdown | None = None
    validation_threshold: float | None = None
    num_other_sequences: Annotated[int, msgspec.Meta(ge=0)] | None = None
    include_preferences_in_validate: bool | None = None
    use_icl: bool | None = None
    # --- the released code's ways, each a knob (docs/fidelity.md; paper.toml: the first value)
    # prose: "released" reads refine, coalesce and breakdown answers as the released code does
    # (the first "Preferences:" line, lower-cased, a newline appended; JSON lists by json.loads);
    # cipher: "released" keeps the whole reply verbatim. Default "none": our forgiving parsers
    answer_normalisation: Literal["released", "none"] | None = None
    # prose: "released": an unparseable refine or coalesce answer is the empty preference (the
    # released code's empty string); default "ignored": it changes nothing
    unparseable_answers: Literal["released", "ignored"] | None = None
    # prose: "released": validation verdicts read as the released code does; default "forgiving"
    verdict_parsing: Literal["released", "forgiving"] | None = None
    # prose, cipher: when the draft (candidate) equals the user's text. "exact": the same string
    # (released); default "words": the same words
    text_equality: Literal["exact", "words"] | None = None
    # icl, cipher, prose: the order earlier instances are shown in. "released": the released
    # agents' (icl, cipherN: oldest first under exact_match and most_recent, best first under
    # the similarity modes; prose: the reverse); default "best_first"
    retrieved_order: Literal["released", "best_first"] | None = None
    # cipher: the merge list. "released": every retrieved instance, an empty preference shown as
    # None, merged even when all are empty; default "learned_only": the non-empty ones
    merge_list: Literal["released", "learned_only"] | None = None
    # prose, cipher: how the draft prompt lists inferred preferences. "as_inferred": each
    # preference as inferred (a coalesced "a; b" on one line, released); default "components":
    # split at "; "
    preference_lines: Literal["as_inferred", "components"] | None = None
    # prose with use_icl: "framed": the draft prompt keeps its example framing with no earlier
    # examples (a user's first instance, released); default "omitted"
    empty_examples: Literal["framed", "omitted"] | None = None
    # fixed_subset: the user's true components to draft with, as 0-based indices, or
    # "powerset" (the default): one episode per subset of each user's components
    subset: list[Annotated[int, msgspec.Meta(ge=0)]] | Literal["powerset"] | None = None

    def given(self) -> set[str]:
        """Knobs set in the scenario (besides ``method``)."""
        defaults = MethodSettings()
        return {
            f
            for f in self.__struct_fields__
            if f != "method" and getattr(self, f) != getattr(defaults, f)
        }

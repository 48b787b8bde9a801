"""Method settings: a method's table in a scenario, one Struct per method.

``MethodSettings`` holds what every method takes (``method``, ``retrieval_mode``);
each built-in method's Struct below adds its own knobs, and a plugin method
declares its own subclass (``Inferrer.settings_type``), so a knob given to the
wrong method is an error at load. Unset knobs (None) take the method's (or the
named variant's, or the agent model's) default when the inferrer starts.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

RetrievalMode = Literal["exact_match", "most_recent", "cosine_sim", "bertscore"]
CandidateType = Literal["iterate", "single", "none"]
Breakdown = Literal["after_refinement", "each_iteration", "never"]
Count = Annotated[int, msgspec.Meta(ge=1)]
Subset = list[Annotated[int, msgspec.Meta(ge=0)]] | Literal["powerset"]


class MethodSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """What every method's table takes; a method with knobs of its own subclasses it."""

    # the inference method; default: the scenario table's own name
    method: str | None = None
    # which earlier instances a method may draw on (the paper's default: exact_match,
    # i.e. only this user's, most recent first); a method that learns nothing takes only
    # the default
    retrieval_mode: RetrievalMode = "exact_match"

    def given(self) -> set[str]:
        """Knobs set in the scenario (besides ``method``): those that differ from the default."""
        defaults = type(self)()
        return {
            f
            for f in self.__struct_fields__
            if f != "method" and getattr(self, f) != getattr(defaults, f)
        }


class FixedSubsetSettings(MethodSettings, kw_only=True):
    # the user's true components to draft with, as 0-based indices, or "powerset" (the
    # default): one episode per subset of each user's components
    subset: Subset | None = None


class IclSettings(MethodSettings, kw_only=True):
    # number of (document, user text) examples shown (default 5)
    num_examples: Count | None = None
    # which document each example shows: "own" (its own; the default) or "current" (the
    # document being worked on, as the released code's prompt does)
    icl_example_document: Literal["own", "current"] | None = None
    # the order earlier instances are shown in. "released": the released agent's (oldest
    # first under exact_match and most_recent, best first under the similarity modes);
    # default "best_first"
    retrieved_order: Literal["released", "best_first"] | None = None


class CipherSettings(MethodSettings, kw_only=True):
    # number of retrieved preferences merged (cipher1: 1, cipherN: 3)
    num_merged: Count | None = None
    # the order earlier instances are shown in ("released": oldest first under exact_match
    # and most_recent, best first under the similarity modes); default "best_first"
    retrieved_order: Literal["released", "best_first"] | None = None
    # the merge list. "released": every retrieved instance, an empty preference shown as
    # None, merged even when all are empty; default "learned_only": the non-empty ones
    merge_list: Literal["released", "learned_only"] | None = None
    # "released" keeps the whole reply verbatim; default "none": our forgiving parser
    answer_normalisation: Literal["released", "none"] | None = None
    # when the draft equals the user's text. "exact": the same string (released); default
    # "words": the same words
    text_equality: Literal["exact", "words"] | None = None
    # how the draft prompt lists inferred preferences. "as_inferred": each preference as
    # inferred (released); default "components": split at "; "
    preference_lines: Literal["as_inferred", "components"] | None = None


class ProseSettings(MethodSettings, kw_only=True):
    # a named variant of the paper (full, nv, sc, 1sc, 1nc, 1sc_ap_nv, full+icl)
    variant: str | None = None
    candidate_type: CandidateType | None = None
    num_refinement_steps: Count | None = None
    do_validate: bool | None = None
    breakdown: Breakdown | None = None
    validation_threshold: float | None = None
    num_other_sequences: Annotated[int, msgspec.Meta(ge=0)] | None = None
    include_preferences_in_validate: bool | None = None
    use_icl: bool | None = None
    # with use_icl: the examples shown (default 5) and which document each shows ("own",
    # the default, or "current", as the released prompt does)
    num_examples: Count | None = None
    icl_example_document: Literal["own", "current"] | None = None
    # "released" reads refine, coalesce and breakdown answers as the released code does (the
    # first "Preferences:" line, lower-cased, a newline appended; JSON lists by json.loads);
    # default "none": our forgiving parsers
    answer_normalisation: Literal["released", "none"] | None = None
    # "released": an unparseable refine or coalesce answer is the empty preference (the
    # released code's empty string); default "ignored": it changes nothing
    unparseable_answers: Literal["released", "ignored"] | None = None
    # "released": validation verdicts read as the released code does; default "forgiving"
    verdict_parsing: Literal["released", "forgiving"] | None = None
    # when the candidate equals the user's text. "exact": the same string (released);
    # default "words": the same words
    text_equality: Literal["exact", "words"] | None = None
    # the order earlier instances are shown in. "released": the released agent's (the
    # reverse of icl's); default "best_first"
    retrieved_order: Literal["released", "best_first"] | None = None
    # how the draft prompt lists inferred preferences. "as_inferred": each preference as
    # inferred (a coalesced "a; b" on one line, released); default "components": split at "; "
    preference_lines: Literal["as_inferred", "components"] | None = None
    # with use_icl: "framed": the draft prompt keeps its example framing with no earlier
    # examples (a user's first instance, released); default "omitted"
    empty_examples: Literal["framed", "omitted"] | None = None

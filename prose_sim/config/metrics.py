"""What a run measures: the scenario's ``[metrics]`` table."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # PPCM, FPM and preference similarity, asked of the judge role's model
    judge: bool = True
    # the BERTScore model ("" to skip BERTScore and the preference BERTScores): the embedded
    # "all-MiniLM-L6-v2" (offline; not comparable with the paper's), or a transformers model
    # name or folder that can be loaded here; the released code's is "microsoft/deberta-xlarge"
    bertscore: str = "all-MiniLM-L6-v2"
    # the layer whose token embeddings are compared (default: bert-score's table; MiniLM: 6)
    bertscore_layers: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # bert-score's baseline rescaling, as the released code does (bert-score ships the
    # baselines of its known models; for another model give bertscore_baseline)
    bertscore_rescale: bool = False
    # a bert-score baseline file (LAYER,P,R,F rows) for rescaling ("": bert-score's own)
    bertscore_baseline: str = ""
    # preference accuracy when the true user's preferences tie with another user's for the
    # highest BERTScore: "strict" (ours: a tie is a miss) or "first" (the released code's
    # argmax: the first of the tied users in the task's user order wins)
    preference_accuracy_ties: Literal["strict", "first"] = "strict"
    # how the judge's verdicts are read: "forgiving" (ours: the last Verdict: line, markdown
    # and headings tolerated, else the keyword said most often) or "released" (the released
    # judge's: the first line starting with "verdict:" once quotes and asterisks are stripped,
    # the first option it contains in the released order, else 0, counted as unparsed)
    judge_parsing: Literal["forgiving", "released"] = "forgiving"
    # deterministic checks of the components that the text alone decides
    verifiable: bool = True

"""What a run measures: the scenario's ``[metrics]`` table."""

from __future__ import annotations

from typing import Annotated

import msgspec


class MetricsSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    # PPCM, FPM and preference similarity, asked of the judge role's model
    judge: bool = True
    # the BERTScore model ("" to skip BERTScore and preference accuracy): the embedded
    # "all-MiniLM-L6-v2", or a transformers model name or folder that can be loaded here,
    # such as "microsoft/deberta-xlarge-mnli"
    bertscore: str = "all-MiniLM-L6-v2"
    # the layer whose token embeddings are compared (default: known per model)
    bertscore_layers: Annotated[int, msgspec.Meta(ge=1)] | None = None
    # deterministic checks of the components that the text alone decides
    verifiable: bool = True

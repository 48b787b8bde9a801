"""How the similarity retrieval modes compare documents: the scenario's ``[retrieval]`` table."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Aggregation = Literal["cls", "mean_pool", "mean_pool2", "max_pool"]


class RetrievalSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The scenario's ``[retrieval]`` table (the released code's retrieval_underlying_model,
    encoder_aggregation and retrieval_threshold): used by methods whose retrieval_mode is
    cosine_sim or bertscore."""

    # cosine_sim: the embedded "all-MiniLM-L6-v2", "bert", "mpnet", or a transformers model
    # name or folder; bertscore: the BERTScore model (the released default for both is
    # "microsoft/deberta-xlarge", which needs the hub or a local copy)
    model: str = "all-MiniLM-L6-v2"
    # cosine_sim with a transformers model: how token states become one vector
    aggregation: Aggregation = "mean_pool"
    # keep only retrieved documents whose similarity is at least this (None: all of the top k)
    threshold: float | None = None
    # bertscore mode: bert-score's layer (default: its table) and baseline rescaling
    # (the released code rescales)
    bertscore_layers: Annotated[int, msgspec.Meta(ge=1)] | None = None
    bertscore_rescale: bool = False
    bertscore_baseline: str = ""

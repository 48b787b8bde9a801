"""Run folders written by earlier versions: what they recorded differently.

Versions before the per-method and per-backend settings Structs kept one flat
table for every method (``MethodSettings``) and one for every backend
(``ModelSpec``); their ``RunStarted.scenario_digest`` is the hash of the scenario
encoded that way. ``flat_digest`` recomputes it, so such a run still resumes and
replays (its scenario unedited) without being mistaken for an edited one.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from prose_sim.config import BUILTIN_SPECS, Scenario

# the flat tables' fields, in their order then
FLAT_METHOD_FIELDS = (
    "method",
    "retrieval_mode",
    "num_examples",
    "icl_example_document",
    "num_merged",
    "variant",
    "candidate_type",
    "num_refinement_steps",
    "do_validate",
    "breakdown",
    "validation_threshold",
    "num_other_sequences",
    "include_preferences_in_validate",
    "use_icl",
    "answer_normalisation",
    "unparseable_answers",
    "verdict_parsing",
    "text_equality",
    "retrieved_order",
    "merge_list",
    "preference_lines",
    "empty_examples",
    "subset",
)
FLAT_MODEL_FIELDS = (
    "backend",
    "model",
    "base_url",
    "base_urls",
    "api_key_env",
    "server",
    "rpm",
    "tpm",
    "rate_window_s",
    "max_concurrency",
    "input_price",
    "output_price",
    "temperature",
    "top_p",
    "top_k",
    "repetition_penalty",
    "max_new_tokens",
    "dtype",
    "device",
    "max_batch_size",
    "max_wait_s",
    "response_prefix",
    "constrained",
    "latency_s",
    "latency_jitter",
    "min_words",
    "max_words",
    "faults",
)


def _model_defaults() -> dict[str, Any]:
    defaults: dict[str, Any] = {}
    for spec in BUILTIN_SPECS.values():
        defaults.update(msgspec.to_builtins(spec()))
    return defaults


def flat_digest(scenario: Scenario) -> str:
    """The scenario's digest as versions with flat method and model tables computed it."""
    tables = scenario.digest_tables()
    tables["methods"] = {
        label: {f: table.get(f) for f in FLAT_METHOD_FIELDS}
        for label, table in tables["methods"].items()
    }
    defaults = _model_defaults()
    tables["models"] = {
        role: None if table is None else {f: table.get(f, defaults[f]) for f in FLAT_MODEL_FIELDS}
        for role, table in tables["models"].items()
    }
    return hashlib.blake2b(msgspec.json.encode(tables), digest_size=8).hexdigest()

"""The ``[models]`` tables: one spec per role, a Struct per backend kind.

``ModelSpec`` holds what every backend takes (the name of the backend, the model,
rate limits, prices, sampling, faults); each built-in kind's Struct adds its own
keys, and a plugin kind declares its own subclass (``BackendKind.spec_type``).
The union is tagged by ``backend``: loading reads it first and converts the table
to that kind's Struct, so a key of another kind (``dtype`` on a scripted role) is
an error naming the kind.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from prose_sim.config.common import NonNegative, Positive, Strict

Rate = Annotated[float, msgspec.Meta(ge=0, le=1)]


class FaultSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    failure_rate: Rate = 0.0  # share of attempts that fail (retryable, like a 503)
    latency_spike_rate: Rate = 0.0  # share of attempts delayed by latency_spike_s first
    latency_spike_s: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    malformed_rate: Rate = 0.0  # share of answers replaced by text no parser accepts
    seed: int = 0


DEFAULT_BACKEND = "scripted"


class ModelSpec(Strict, kw_only=True):
    """What every backend takes."""

    # scripted: the deterministic test double; local: a transformers model served in-process;
    # openai: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, Ollama, ...)
    # (or a backend an installed package adds: the prose_sim.backends entry-point group)
    backend: str = DEFAULT_BACKEND
    # local: a Hugging Face name, a local folder, a .gguf file, or the embedded
    # "smollm2-135m-instruct" (the default); openai: the served model's name; scripted: a label
    model: str = ""
    # shared by every role on the same endpoint: requests and tokens per rate_window_s
    # seconds (default: unlimited), and the adaptive concurrency cap's ceiling (default: the
    # run's concurrency; also the HTTP connection pool's size)
    rpm: Positive | None = None
    tpm: Positive | None = None
    rate_window_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    max_concurrency: Positive | None = None
    # USD per million input / output tokens, for the run's cost accounting
    input_price: NonNegative = 0.0
    output_price: NonNegative = 0.0
    temperature: NonNegative = 0.0
    top_p: Annotated[float, msgspec.Meta(gt=0, le=1)] = 1.0
    top_k: Annotated[int, msgspec.Meta(ge=0)] = 0
    repetition_penalty: Annotated[float, msgspec.Meta(gt=0)] = 1.0
    max_new_tokens: Positive = 512
    # start answers with the format keyword a prompt asks for ("Preferences:", "Verdict:"),
    # where the backend can (local); it keeps small models to the expected format
    response_prefix: bool = True
    # keep verdicts to the scale's keywords and lists to a JSON list of strings (local: by
    # masking logits; openai: the server's structured output, response_format json_schema,
    # as vLLM and SGLang take it); the judge then answers with the keyword alone
    constrained: bool = False
    # inject failures, latency spikes and malformed answers (seeded), to test a setup's
    # fault handling; e.g. [models.agent.faults] failure_rate = 0.2
    faults: FaultSettings | None = None


class ScriptedSpec(ModelSpec, kw_only=True):
    """``backend = "scripted"``: the deterministic test double."""

    # simulated latency (seconds) and answer length (words)
    latency_s: NonNegative = 0.0
    latency_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    min_words: Positive = 30
    max_words: Positive = 90


class LocalSpec(ModelSpec, kw_only=True):
    """``backend = "local"``: a transformers (or GGUF) model served in-process."""

    # weights dtype (auto: bfloat16 on CUDA, float32 on CPU) and device
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    # the server's scheduling: most requests decoding together; how long an idle server
    # waits for the requests sent with the first
    max_batch_size: Positive = 32
    max_wait_s: NonNegative = 0.02
    # the KV storage the server's rows share, in tokens (default: half the free GPU memory
    # on CUDA, 192 MiB elsewhere), and the tokens of prompt prefixes kept for reuse (0: none)
    max_kv_tokens: Positive | None = None
    prefix_cache_tokens: Annotated[int, msgspec.Meta(ge=0)] = 1024


class OpenAISpec(ModelSpec, kw_only=True):
    """``backend = "openai"``: an OpenAI-compatible chat-completions endpoint."""

    # the endpoint ("" = OpenAI's) and the NAME of the environment variable that holds its
    # key (the key itself never goes into a scenario)
    base_url: str = ""
    # instead of base_url: several endpoints serving the same model (e.g. vLLM replicas),
    # balanced by outstanding requests; an endpoint that keeps failing is taken out for a
    # cooldown and retried later. rpm, tpm and max_concurrency are EACH endpoint's own
    # limits (not the total), and api_key_env names the key for all of them
    base_urls: list[str] = []
    api_key_env: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\Z")] = (
        "OPENAI_API_KEY"
    )
    # the kind of server at base_url, for what servers disagree on (structured output,
    # top_k / repetition_penalty); "auto": "openai" for OpenAI's API, else "other"
    # (docs/servers.md says what is sent to each)
    server: Literal["auto", "openai", "vllm", "llama.cpp", "transformers", "other"] = "auto"


# the built-in kinds' Structs, by backend name
BUILTIN_SPECS: dict[str, type[ModelSpec]] = {
    "scripted": ScriptedSpec,
    "local": LocalSpec,
    "openai": OpenAISpec,
}


class Models(Strict):
    # the simulated user
    user: ModelSpec = msgspec.field(default_factory=ScriptedSpec)
    # writes every draft and PROSE candidate (the released code: the user's model, GPT-4o);
    # unset: the user's spec, resolved at load
    writer: ModelSpec | None = None
    # the model under test: only infers (refine, break down, validate, coalesce, CIPHER)
    agent: ModelSpec = msgspec.field(default_factory=ScriptedSpec)
    judge: ModelSpec = msgspec.field(default_factory=ScriptedSpec)

    def of(self, role: str) -> ModelSpec:
        """The spec serving ``role`` (the writer defaults to the user's)."""
        if role == "writer":
            return self.writer if self.writer is not None else self.user
        spec: ModelSpec = getattr(self, role)
        return spec

"""The scenario schema: what a scenario file may say, as msgspec Structs (and nothing else).

A scenario names the tasks, simulated users, methods, seeds and models a run
covers. Reading a file into these Structs (TOML, ``--set``, one-line errors) is
``loading``'s job; checking it against the personas and documents is the world
assembly's (``prose_sim.world.assembly``). Settings owned by another part (a
method's knobs, the metrics, retries, faults, retrieval) are that part's Structs,
used here as tables.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Literal

import msgspec

from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.metrics.settings import MetricsSettings
from prose_sim.models.backends.faulty import FaultSettings
from prose_sim.models.embeddings import RetrievalSettings
from prose_sim.models.retry import RetryPolicy

Framework = Literal["plume", "prelude", "prelude.no_edit"]
Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
# the longest scenario name or method label (they go into file names, with a time stamp)
NAME_MAX = 64
# a method label: it goes into results.csv, report.md and file names as it is
LABEL_PATTERN = r"[A-Za-z0-9_.+-]+"


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Base for scenario tables: unknown keys are errors."""


class TaskSpec(Strict):
    # one framework or several; each gives its own episodes
    framework: Framework | list[Framework] = "plume"
    # persona names (see `prose-sim personas list`); "files": every persona of the task in the
    # scenario's persona_files (e.g. a generated population); "all": built-in, plugins' and files';
    # default: the paper's users of the task
    personas: list[str] | Literal["files", "all"] | None = None

    @property
    def frameworks(self) -> list[str]:
        return [self.framework] if isinstance(self.framework, str) else list(self.framework)


# A method table: `method` (default: the table's name) and that method's knobs.
MethodSpec = MethodSettings
# The [metrics] table: judge metrics, the BERTScore model, verifiable checks.
MetricsSpec = MetricsSettings


class ModelSpec(Strict):
    # scripted: the deterministic test double; local: a transformers model served in-process;
    # openai: any OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, SGLang, Ollama, ...)
    # (or a backend an installed package adds: the prose_sim.backends entry-point group)
    backend: str = "scripted"
    # local: a Hugging Face name, a local folder, a .gguf file, or the embedded
    # "smollm2-135m-instruct" (the default); openai: the served model's name; scripted: a label
    model: str = ""
    # openai only: the endpoint ("" = OpenAI's) and the NAME of the environment variable
    # that holds its key (the key itself never goes into a scenario)
    base_url: str = ""
    # openai only, instead of base_url: several endpoints serving the same model (e.g. vLLM
    # replicas), balanced by outstanding requests; an endpoint that keeps failing is taken
    # out for a cooldown and retried later. rpm, tpm and max_concurrency below are EACH
    # endpoint's own limits (not the total), and api_key_env names the key for all of them
    base_urls: list[str] = []
    api_key_env: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\Z")] = (
        "OPENAI_API_KEY"
    )
    # openai only: the kind of server at base_url, for what servers disagree on (structured
    # output, top_k / repetition_penalty); "auto": "openai" for OpenAI's API, else "other"
    # (docs/servers.md says what is sent to each)
    server: Literal["auto", "openai", "vllm", "llama.cpp", "transformers", "other"] = "auto"
    # any backend, shared by every role on the same endpoint: requests and tokens per
    # rate_window_s seconds (default: unlimited), and the adaptive concurrency cap's
    # ceiling (default: the run's concurrency; also the HTTP connection pool's size)
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
    # local backend only: weights dtype (auto: bfloat16 on CUDA, float32 on CPU), device,
    # and the server's scheduling (most requests decoding together; how long an idle server
    # waits for the requests sent with the first)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    device: str = "auto"
    max_batch_size: Positive = 32
    max_wait_s: NonNegative = 0.02
    # start answers with the format keyword a prompt asks for ("Preferences:", "Verdict:"),
    # where the backend can (local); it keeps small models to the expected format
    response_prefix: bool = True
    # keep verdicts to the scale's keywords and lists to a JSON list of strings (local: by
    # masking logits; openai: the server's structured output, response_format json_schema,
    # as vLLM and SGLang take it); the judge then answers with the keyword alone
    constrained: bool = False
    # scripted backend only: simulated latency (seconds) and answer length (words)
    latency_s: NonNegative = 0.0
    latency_jitter: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    min_words: Positive = 30
    max_words: Positive = 90
    # any backend: inject failures, latency spikes and malformed answers (seeded), to test
    # a setup's fault handling; e.g. [models.agent.faults] failure_rate = 0.2
    faults: FaultSettings | None = None


class Models(Strict):
    # the simulated user
    user: ModelSpec = msgspec.field(default_factory=ModelSpec)
    # writes every draft and PROSE candidate (the released code: the user's model, GPT-4o);
    # unset: the user's spec, resolved at load
    writer: ModelSpec | None = None
    # the model under test: only infers (refine, break down, validate, coalesce, CIPHER)
    agent: ModelSpec = msgspec.field(default_factory=ModelSpec)
    judge: ModelSpec = msgspec.field(default_factory=ModelSpec)

    def of(self, role: str) -> ModelSpec:
        """The spec serving ``role`` (the writer defaults to the user's)."""
        if role == "writer":
            return self.writer if self.writer is not None else self.user
        return getattr(self, role)


class PromptSettings(Strict):
    # a folder of your own templates (relative to the scenario file): each NAME.j2 in it
    # replaces the built-in template NAME (see `prompts/`), rendered sandboxed; "" = none
    dir: str = ""


class Scenario(Strict, kw_only=True):
    # goes into the run folder's name: a full match of the pattern (\Z: no trailing newline)
    name: Annotated[
        str, msgspec.Meta(min_length=1, max_length=NAME_MAX, pattern=r"^[A-Za-z0-9_.-]+\Z")
    ]
    seeds: Annotated[list[int], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: [1235]
    )
    demonstrations_per_user: Positive = 5
    # "bundled": documents shipped with prose_sim; "huggingface": the paper's datasets
    corpus: Literal["bundled", "huggingface"] = "bundled"
    # huggingface corpus only: read each source's train split from <corpus_dir>/<source>/
    # (files in the dataset's own schema that `datasets` reads: train.parquet, train.jsonl,
    # train.csv, train.txt) instead of the Hub; relative to the scenario file
    corpus_dir: str | None = None
    # written by earlier versions into every run's scenario.toml (documents kept per source);
    # the released loader keeps no such cap, so it has no effect now, and is accepted only so
    # that those run folders still replay, resume and report
    corpus_max_per_source: Positive | None = None
    # episodes in flight at once; default: all of them
    concurrency: Positive | None = None
    # persona TOML files or folders, beside the built-in and installed plugins' personas
    # (relative paths are relative to the scenario file)
    persona_files: list[str] = []
    tasks: dict[str, TaskSpec]
    methods: dict[str, MethodSpec]
    models: Models = msgspec.field(default_factory=Models)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    metrics: MetricsSpec = msgspec.field(default_factory=MetricsSpec)
    # how the cosine_sim and bertscore retrieval modes compare documents
    retrieval: RetrievalSettings = msgspec.field(default_factory=RetrievalSettings)
    # your own prompt templates, overriding the built-in ones by name
    prompts: PromptSettings = msgspec.field(default_factory=PromptSettings)

    def method_of(self, label: str) -> str:
        return self.methods[label].method or label

    def digest(self) -> str:
        return hashlib.blake2b(msgspec.json.encode(self), digest_size=8).hexdigest()

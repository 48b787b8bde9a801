"""The scenario: what a scenario file may say, as msgspec Structs (and nothing else).

A scenario names the tasks, simulated users, methods, seeds and models a run
covers. Reading a file into these Structs (TOML, ``--set``, one-line errors, the
method and backend tables converted to their own Structs) is
``prose_sim.scenario.loading``'s job; checking it against the personas and
documents is the world assembly's (``prose_sim.world.assembly``).
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal

import msgspec

from prose_sim.config.budget import BudgetSettings, ShardingSettings
from prose_sim.config.common import NAME_MAX, Framework, Positive, Strict
from prose_sim.config.methods import MethodSettings
from prose_sim.config.metrics import MetricsSettings
from prose_sim.config.models import Models
from prose_sim.config.report import ReportSettings
from prose_sim.config.retrieval import RetrievalSettings
from prose_sim.config.retry import RetryPolicy


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
    # a table per method label: `method` (default: the label) and that method's knobs, each
    # method's own Struct (converted by loading)
    methods: dict[str, MethodSettings]
    models: Models = msgspec.field(default_factory=Models)
    retry: RetryPolicy = msgspec.field(default_factory=RetryPolicy)
    # judge metrics, the BERTScore model, verifiable checks
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    # how the cosine_sim and bertscore retrieval modes compare documents
    retrieval: RetrievalSettings = msgspec.field(default_factory=RetrievalSettings)
    # your own prompt templates, overriding the built-in ones by name
    prompts: PromptSettings = msgspec.field(default_factory=PromptSettings)
    # how the report compares methods (paired comparisons); the run itself ignores it
    report: ReportSettings = msgspec.field(default_factory=ReportSettings)
    # stop the run before it spends more than this (USD, calls, tokens); unset: no limit
    budget: BudgetSettings | None = None
    # how `run --shard K/N` shares each endpoint's limits among the shards
    sharding: ShardingSettings | None = None

    def method_of(self, label: str) -> str:
        return self.methods[label].method or label

    def digest(self) -> str:
        return hashlib.blake2b(msgspec.json.encode(self.digest_tables()), digest_size=8).hexdigest()

    def digest_tables(self) -> dict[str, Any]:
        """The tables the digest covers: all but those that never change what a run does
        (``NOT_DIGESTED``), so that editing them, or a version that adds them, does not make a
        run's folder read as edited."""
        tables: dict[str, Any] = msgspec.to_builtins(self)
        for key in NOT_DIGESTED:
            tables.pop(key, None)
        return tables


# the scenario tables that never change what a run computes, left out of its digest: those
# only the outputs read ([report]), and those that only say how it is run ([budget], [sharding])
NOT_DIGESTED = ("report", "budget", "sharding")

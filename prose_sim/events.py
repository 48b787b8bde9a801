"""The event union: every state change of a simulation is one of these.

Events are immutable msgspec Structs tagged by ``kind``. The log of a run
(``events.jsonl``) is a sequence of them, and it is enough to rebuild the
run's results: nothing that matters lives only in memory.

Every event carries the run id, the episode id (empty for run-level events),
a per-episode sequence number and a wall-clock timestamp. ``instance`` is the
index of the task instance inside its episode.

That envelope is the bus's business, not the publisher's: its fields have
defaults, so a publisher builds an event from its own fields alone and
``EpisodeBus.publish`` stamps it. The envelope fields are keyword-only, which
msgspec places after an event's own fields, so a log line reads the event's
own fields first.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    run_id: str = ""
    episode_id: str = ""
    seq: int = -1  # -1: not published yet
    ts: float = 0.0


# --- run and episode life -------------------------------------------------


class RunStarted(Event, frozen=True, tag="run_started"):
    scenario_name: str
    scenario_digest: str
    episodes: int
    version: str
    shard: str = ""  # "K/N" when this run holds one shard of the grid (run --shard)
    # the personas the scenario uses (from files and plugins too): resume refuses changed ones
    personas_digest: str = ""
    # the scenario's [prompts] dir, resolved ("" = the built-in prompts), and the hash of every
    # template of the user's the run renders (by path): resume and replay refuse a changed one
    prompts_dir: str = ""
    templates: dict[str, str] = {}
    # the resolved scenario's tables (as scenario.toml holds them) and the definition of every
    # persona it may use (whatever file or plugin defines it), so the log alone is enough for
    # report and view (logs of earlier versions: empty, and scenario.toml is read instead)
    scenario: dict[str, Any] = {}
    personas: list[dict[str, Any]] = []
    # a rescore: the run (its folder name and scenario digest) whose user, writer and agent
    # answers this run was served from its log, only the judge and the metrics run again
    derived_from: str = ""
    # run --resume --extend: the digests of the smaller scenarios this run grew from, oldest
    # first (its scenario is the larger one's)
    extended_from: list[str] = []


class RunResumed(Event, frozen=True, tag="run_resumed"):
    """``run --resume``: finished episodes were kept, the others start again,
    served the answers they had already been given from the log."""

    episodes_done: int
    episodes_rerun: int
    answers_recorded: int
    torn_line: int = 0  # the torn last line dropped from the log (0: none)
    extended: str = ""  # run --resume --extend: what the larger scenario added ("" when none)


class RunFinished(Event, frozen=True, tag="run_finished"):
    status: str  # completed | interrupted | failed
    wall_s: float
    episodes_completed: int
    episodes_failed: int


class EpisodeStarted(Event, frozen=True, tag="episode_started"):
    task: str
    framework: str
    method: str
    seed: int
    personas: list[str]
    instances: int
    models: dict[str, str]  # role -> model name


class EpisodeFinished(Event, frozen=True, tag="episode_finished"):
    status: str  # completed | failed
    instances_completed: int
    instances_failed: int
    error: str = ""


# --- one task instance (the paper's Algorithm 1) --------------------------


class InstanceStarted(Event, frozen=True, tag="instance_started"):
    instance: int
    persona: str
    document_id: str
    document: str


class PreferencesRetrieved(Event, frozen=True, tag="preferences_retrieved"):
    """The inferrer's 'complete' step: what the writing agent drafts with."""

    instance: int
    preferences: str
    examples: list[tuple[str, str]] = []  # (document, user text) pairs for ICL
    retrieved: list[str] = []  # the persona of each earlier instance drawn on
    # the preferences one per prompt line, when the method gives them as inferred
    # (preference_lines = "as_inferred"); None: the string split at "; "
    components: list[str] | None = None
    examples_framed: bool = False  # the prompt frames examples even when there are none


class DraftProduced(Event, frozen=True, tag="draft_produced"):
    instance: int
    text: str
    preferences: str


class DemonstrationProduced(Event, frozen=True, tag="demonstration_produced"):
    instance: int
    text: str
    accepted: bool = False  # PRELUDE: the user accepted the draft unchanged


class PreferencesInferred(Event, frozen=True, tag="preferences_inferred"):
    """The inferrer's 'learn' step is done for this instance."""

    instance: int
    preferences: str
    components: list[str] = []
    # PROSE: each validated component -> its verdict scores (kept: those in ``components``),
    # and the threshold their mean had to exceed
    validation: dict[str, list[int]] = {}
    threshold: float | None = None


class MetricsComputed(Event, frozen=True, tag="metrics_computed"):
    instance: int
    metrics: dict[str, float]


class JudgeVerdict(Event, frozen=True, tag="judge_verdict"):
    """One judge question about a draft, and the score read from its answer.

    ``metric``: ppcm (one true component), fpm (all of them) or similarity
    (inferred vs true preferences). An unparseable answer scores 0, as in the
    paper, with ``parsed`` false. For PPCM, ``checker`` names the verifiable
    check of the component (if text alone decides it) and ``checked`` its result
    on the draft, so judge and checker can be compared.
    """

    instance: int
    metric: str
    score: float
    parsed: bool
    component: str = ""
    request_id: str = ""  # the ModelRequested / ModelResponded holding question and answer
    checker: str = ""
    checked: bool | None = None


class InstanceFinished(Event, frozen=True, tag="instance_finished"):
    instance: int
    status: str  # ok | failed


class ParseFailed(Event, frozen=True, tag="parse_failed"):
    """A model answer could not be parsed; the step goes on with a fallback."""

    instance: int
    role: str
    purpose: str
    excerpt: str


class StepFailed(Event, frozen=True, tag="step_failed"):
    """A protocol step could not be done; the instance is recorded as failed."""

    instance: int
    actor: str
    stage: str
    error: str


# --- model traffic ----------------------------------------------------------


class ModelRequested(Event, frozen=True, tag="model_requested"):
    request_id: str
    instance: int
    role: str
    purpose: str
    model: str
    request_hash: str
    messages: list[dict[str, str]]


class ModelResponded(Event, frozen=True, tag="model_responded"):
    request_id: str
    instance: int
    role: str
    purpose: str
    text: str
    input_tokens: int
    output_tokens: int
    latency_s: float
    cached: bool = False
    attempts: int = 1
    # USD at the scenario's price for the model (0 for cache hits and unpriced models)
    cost_usd: float = 0.0
    # why generation stopped, as the server said ("stop", "length": cut at max_new_tokens);
    # "" where unknown (older logs, cached answers, backends that do not say)
    finish_reason: str = ""
    # the model the server says answered, where it differs from the one asked ("": the same)
    served_model: str = ""
    # the answer's length in characters before prose_sim cut it (0: not cut)
    cut_from_chars: int = 0


class ModelFailed(Event, frozen=True, tag="model_failed"):
    request_id: str
    instance: int
    role: str
    purpose: str
    error: str
    attempts: int = 1


class BatchStats(msgspec.Struct, frozen=True, kw_only=True):
    """What a local model server did in one batch (static batching) or one window of decode
    steps (iteration-level scheduling); summed with ``plus``, its totals over a run. The one
    record the generators return, ``BatchServed`` carries and the servers' totals hold."""

    size: int = 0  # requests answered
    prompt_tokens: int = 0
    padded_tokens: int = 0  # padding added to the prompts
    generated_tokens: int = 0
    steps: int = 0  # decode steps
    idle_row_steps: int = 0  # rows in them that produced no token
    wall_s: float = 0.0
    queue_wait_s: float = 0.0  # summed over the requests answered
    max_queue_wait_s: float = 0.0

    def plus(self, other: BatchStats) -> BatchStats:
        return BatchStats(
            size=self.size + other.size,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            padded_tokens=self.padded_tokens + other.padded_tokens,
            generated_tokens=self.generated_tokens + other.generated_tokens,
            steps=self.steps + other.steps,
            idle_row_steps=self.idle_row_steps + other.idle_row_steps,
            wall_s=self.wall_s + other.wall_s,
            queue_wait_s=self.queue_wait_s + other.queue_wait_s,
            max_queue_wait_s=max(self.max_queue_wait_s, other.max_queue_wait_s),
        )


class BatchServed(Event, frozen=True, tag="batch_served"):
    """The local model server decoded one batch (run-level; timing, not results)."""

    model: str
    batch: BatchStats


AnyEvent = (
    RunStarted
    | RunResumed
    | RunFinished
    | EpisodeStarted
    | EpisodeFinished
    | InstanceStarted
    | PreferencesRetrieved
    | DraftProduced
    | DemonstrationProduced
    | PreferencesInferred
    | MetricsComputed
    | JudgeVerdict
    | InstanceFinished
    | StepFailed
    | ParseFailed
    | ModelRequested
    | ModelResponded
    | ModelFailed
    | BatchServed
)

EVENT_TYPES: tuple[type[Event], ...] = AnyEvent.__args__

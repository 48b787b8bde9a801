"""PROSE: iteratively refine preferences against the user's text, break them
down into components, and keep only the components the user's writing confirms.

The learning step follows the paper's Algorithm 2 (design brief, section 3):
1. start from the preferences the draft was written with (the coalesced
   preferences of up to k earlier demonstrations), the draft as candidate;
2. up to S refinement steps, stopping early when the candidate equals the
   user's text; unless it is the last step, the writer drafts a new candidate
   (iterate). The kept preferences accumulate: the starting ones plus every
   step's output; each step's prompt shows only the latest step's;
3. break all the kept preferences, joined, down into a list of single
   components (skipped when they already are a JSON list);
4. validate each component against the new demonstration and up to k earlier
   ones on a 5-point scale, with cached verdicts and an early stop;
5. drop components whose mean score is at or below the threshold.

Prompts follow the released code (``preference_inferring_agents/prose.py`` and
``prompt_templates/``): see docs/fidelity.md.
"""

from __future__ import annotations

import json
import math
import re
from functools import partial
from typing import Any

import msgspec

from prose_sim.actors.base import ActorContext
from prose_sim.actors.inferrers.base import (
    CallEstimate,
    Inferrer,
    Learned,
    Retrieved,
    same_text,
)
from prose_sim.actors.inferrers.icl import icl_examples
from prose_sim.actors.inferrers.memory import MemoryItem, released_order
from prose_sim.actors.together import run_together
from prose_sim.actors.writing import task_messages, written_text
from prose_sim.config.methods import MethodSettings, ProseSettings
from prose_sim.events import InstanceStarted
from prose_sim.models.answers import Choice, JsonList, Reasoned
from prose_sim.parsing import (
    parse_json_list,
    parse_preferences,
    parse_verdict,
    released_answer_line,
    released_json_list,
    released_validation_keyword,
    split_preferences,
)
from prose_sim.scales import VALIDATION_SCALE

# The paper's named variants (all break down after refinement).
VARIANTS: dict[str, dict[str, object]] = {
    "full": {"candidate_type": "iterate", "do_validate": True},
    "nv": {"candidate_type": "iterate", "do_validate": False},
    "sc": {"candidate_type": "single", "do_validate": True},
    "1sc": {"candidate_type": "single", "num_refinement_steps": 1, "do_validate": True},
    "1nc": {"candidate_type": "none", "num_refinement_steps": 1, "do_validate": True},
    "1sc_ap_nv": {"candidate_type": "single", "num_refinement_steps": 1, "do_validate": False},
    "full+icl": {"candidate_type": "iterate", "do_validate": True, "use_icl": True},
}

# The released code's main-table settings per agent model: (S, validation threshold).
MODEL_DEFAULTS: list[tuple[str, int, float]] = [
    ("gpt-4o-mini", 3, 0.5),
    ("gpt-4o", 5, 0.5),
    ("qwen2.5-72b", 5, 0.75),
    ("qwen2.5-7b", 5, 0.25),
]
FALLBACK_DEFAULTS = (3, 0.5)  # any other model: GPT-4o-mini's
DEFAULT_OTHER_SEQUENCES = 5
DEFAULT_ICL_EXAMPLES = 5
EARLY_STOP_MIN_VERDICTS = 2
EARLY_STOP_MEAN_MAGNITUDE = 1.5


class ProseConfig(msgspec.Struct, frozen=True, kw_only=True):
    candidate_type: str = "iterate"
    num_refinement_steps: int = 3
    do_validate: bool = True
    breakdown: str = "after_refinement"
    validation_threshold: float = 0.5
    num_other_sequences: int = DEFAULT_OTHER_SEQUENCES
    include_preferences_in_validate: bool = False
    use_icl: bool = False
    num_examples: int = DEFAULT_ICL_EXAMPLES
    icl_example_document: str = "own"
    answer_normalisation: str = "none"
    unparseable_answers: str = "ignored"
    verdict_parsing: str = "forgiving"
    text_equality: str = "words"
    retrieved_order: str = "best_first"
    preference_lines: str = "components"
    empty_examples: str = "omitted"


def _letters_digits(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def model_defaults(model: str) -> tuple[int, float]:
    """(S, threshold) for an agent model name, e.g. 'Qwen/Qwen2.5-7B-Instruct' -> (5, 0.25)."""
    name = _letters_digits(model.rsplit("/", 1)[-1])
    for prefix, steps, threshold in MODEL_DEFAULTS:
        if name.startswith(_letters_digits(prefix)):
            return steps, threshold
    return FALLBACK_DEFAULTS


def resolve_config(settings: ProseSettings, agent_model: str, use_icl: bool = False) -> ProseConfig:
    """Explicit knobs over the variant's over the model's defaults."""
    steps, threshold = model_defaults(agent_model)
    values: dict[str, Any] = {
        "num_refinement_steps": steps,
        "validation_threshold": threshold,
        "use_icl": use_icl,
    }
    values.update(VARIANTS[settings.variant or "full"])
    for knob in ProseConfig.__struct_fields__:
        given = getattr(settings, knob, None)
        if given is not None:
            values[knob] = given
    return ProseConfig(**values)


def _as_json_list(text: str) -> list[str] | None:
    """The components, when a preference string is already a JSON list of strings."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    return None


def parse_refined(text: str) -> str | None:
    """A refine answer, kept as printed: a JSON-list answer stays JSON (so that a kept set
    that is one JSON list needs no breakdown, as in the released code)."""
    preferences = parse_preferences(text)
    if preferences is None:
        return None
    listed = parse_json_list(text)
    if listed and "; ".join(listed) == preferences:
        return json.dumps(listed)
    return preferences


def _listed_or_string(text: str) -> list[str] | str | None:
    """A refine answer when preferences are broken down at each step: the JSON list, else
    the answer line as a string (to break down), else None."""
    listed = parse_json_list(text)
    return listed if listed else parse_preferences(text)


def _released_line(text: str) -> str | None:
    """The released reader of a refine, coalesce or breakdown answer; None where it finds no
    "Preferences:" line (it returns "" there)."""
    return released_answer_line(text) or None


def _released_list(text: str) -> list[str] | None:
    """A breakdown answer as released: the answer line read by ``json.loads``; None (a
    failure the released code counts) when there is no line or no JSON; [] for an empty
    list (the released code's empty set, not counted)."""
    return released_json_list(released_answer_line(text))


def _released_verdict(text: str) -> int | None:
    keyword = released_validation_keyword(text, list(VALIDATION_SCALE))
    return None if keyword is None else VALIDATION_SCALE[keyword]


def prose_order(items: list[MemoryItem], order: str, mode: str) -> list[MemoryItem]:
    """The earlier instances (best first) in PROSE's order: "released" reverses what the
    released retriever returns (``Prose.complete``: ``related_examples.reverse()``), i.e.
    most recent first under exact_match and most_recent, least similar first under the
    similarity modes; "best_first" keeps them best first."""
    return released_order(items, mode)[::-1] if order == "released" else list(items)


class Prose(Inferrer):
    settings_type = ProseSettings
    settings: ProseSettings
    default_use_icl = False

    def __init__(self, ctx: ActorContext, settings: MethodSettings | None = None):
        super().__init__(ctx, settings)
        self.config = resolve_config(self.settings, ctx.agent_model, self.default_use_icl)
        # (component, persona, document id) -> score: a verdict is never asked twice
        self.verdicts: dict[tuple[str, str, str], int] = {}
        self._examples: dict[int, list[tuple[str, str]]] = {}
        self._starting: dict[int, list[str]] = {}  # per instance: the coalesced preferences

    @classmethod
    def expected_calls(cls, settings, agent_model, earlier, components):
        """Coalesce (once an earlier instance exists), the refine steps, a new candidate per
        step but the first (``iterate``), the breakdown, and, when it validates, one verdict
        per component for the new demonstration and each earlier one (up to k)."""
        cfg = resolve_config(settings, agent_model, cls.default_use_icl)
        steps = cfg.num_refinement_steps
        calls = (earlier > 0) + steps
        calls += steps - 1 if cfg.candidate_type == "iterate" else 0
        calls += {"after_refinement": 1, "each_iteration": steps}.get(cfg.breakdown, 0)
        if cfg.do_validate:
            calls += components * (1 + min(earlier, cfg.num_other_sequences))
        return CallEstimate(float(calls), earlier > 0)

    @classmethod
    def check(cls, settings: MethodSettings) -> tuple[str, str] | None:
        assert isinstance(settings, ProseSettings)
        if settings.variant is not None and settings.variant not in VARIANTS:
            return (
                "variant",
                f"unknown PROSE variant {settings.variant!r} (known: {', '.join(VARIANTS)})",
            )
        return None

    # --- complete: the preferences to draft with ---------------------------------

    @property
    def released_answers(self) -> bool:
        """Answers read as the released code reads them (``answer_normalisation``)."""
        return self.config.answer_normalisation == "released"

    @property
    def released_failures(self) -> bool:
        """An unparseable answer is the empty preference, as released (``unparseable_answers``)."""
        return self.config.unparseable_answers == "released"

    def lines(self, preferences: list[str]) -> list[str] | None:
        """The preferences as the draft prompt lists them: each as inferred
        (``preference_lines = "as_inferred"``), or None: the joined string split at "; "."""
        return list(preferences) if self.config.preference_lines == "as_inferred" else None

    @property
    def examples_framed(self) -> bool:
        return self.config.use_icl and self.config.empty_examples == "framed"

    async def retrieve(self, instance):
        cfg = self.config
        mode = self.settings.retrieval_mode
        items = await self.recall(
            instance, max(cfg.num_other_sequences, cfg.num_examples if cfg.use_icl else 0)
        )
        earlier = prose_order(items[: cfg.num_other_sequences], cfg.retrieved_order, mode)
        components = list(dict.fromkeys(c for m in earlier for c in m.components))
        starting: list[str] = []
        if components:  # coalesce only when earlier preferences exist
            starting = await self.coalesce(instance.instance, components)
        examples = (
            icl_examples(
                prose_order(items[: cfg.num_examples], cfg.retrieved_order, mode),
                instance,
                cfg.icl_example_document,
            )
            if cfg.use_icl
            else []
        )
        self._examples[instance.instance] = examples
        self._starting[instance.instance] = starting
        return Retrieved(
            preferences="; ".join(starting),
            examples=examples,
            retrieved=[m.persona for m in items],
            components=self.lines(starting),
            examples_framed=self.examples_framed,
        )

    async def coalesce(self, instance: int, components: list[str]) -> list[str]:
        """The earlier preferences condensed: one description (after_refinement, never), or a
        list (each_iteration). Unparseable: the components as they were, or (released) the
        empty preference, which each_iteration breaks down."""
        listed = self.config.breakdown == "each_iteration"
        parse: Any = (
            _released_line
            if self.released_answers
            else (parse_json_list if listed else parse_preferences)
        )
        merged = await self.ask(
            "coalesce",
            instance,
            "prose_coalesce",
            parse,
            answer=JsonList() if listed else None,
            components_json=json.dumps(components),
            listed=listed,
        )
        if not merged:
            if not self.released_failures:
                return components
            merged = ""  # Prose.coalesce_preferences: the failed line is a preference
        if isinstance(merged, list):
            return list(dict.fromkeys(merged))
        if listed:  # released: json.loads of the line, else a breakdown of it
            as_list = released_json_list(merged)
            if as_list:
                return list(dict.fromkeys(as_list))
            return await self.break_down(instance, merged)
        return [merged]

    # --- learn: Algorithm 2 ----------------------------------------------------------

    async def learn(self, instance, draft, demonstration):
        cfg = self.config
        user_text = demonstration.text
        # the kept preferences: the starting (coalesced) ones plus every step's output;
        # each step's prompt shows only the latest step's
        kept = list(self._starting.pop(instance.instance, split_preferences(draft.preferences)))
        latest = list(kept)
        candidate = None if cfg.candidate_type == "none" else draft.text
        for step in range(cfg.num_refinement_steps):
            if candidate is not None and same_text(candidate, user_text, cfg.text_equality):
                break
            new = await self.refine(instance, latest, candidate, user_text)
            if new:  # nothing usable: the step changes nothing
                latest = new
                kept += [p for p in new if p not in kept]
            last = step == cfg.num_refinement_steps - 1
            if cfg.candidate_type == "iterate" and not last:
                candidate = await self.redraft(instance, latest)
        components = kept
        if cfg.breakdown == "after_refinement" and kept:
            broken = await self.break_down(instance.instance, "; ".join(kept))
            if broken:  # an unusable answer keeps the preferences as they were
                components = broken
        scores: dict[str, list[int]] = {}
        if cfg.do_validate and components:
            components = await self.validate(instance, user_text, components, scores)
        joined = "; ".join(components)
        self.remember(instance, user_text, joined, components)
        self._examples.pop(instance.instance, None)
        threshold = cfg.validation_threshold if scores else None
        return Learned(
            preferences=joined, components=components, validation=scores, threshold=threshold
        )

    async def refine(
        self, instance: InstanceStarted, latest: list[str], candidate: str | None, user_text: str
    ) -> list[str]:
        """One refinement step: the new latest preferences, [] when the answer is unusable.

        Released handling of unparseable answers (``Prose.learn``): the failed answer, the
        empty string, becomes the latest preference (each_iteration: it is broken down)."""
        listed = self.config.breakdown == "each_iteration"
        parse: Any = (
            _released_line
            if self.released_answers
            else (_listed_or_string if listed else parse_refined)
        )
        refined = await self.ask(
            "refine",
            instance.instance,
            "prose_refine",
            parse,
            answer=Reasoned(),  # reasoning, then the "Preferences:" line (constrained roles)
            document=instance.document,
            preferences="; ".join(latest),
            preferences_found=bool(latest),
            candidate=candidate,
            user_text=user_text,
            listed=listed,
        )
        if refined is None:
            if not self.released_failures:
                return []
            refined = ""
        if isinstance(refined, list):
            return list(dict.fromkeys(refined))
        if not listed:
            return [refined]
        if self.released_answers:  # released: json.loads of the line, else a breakdown of it
            as_list = released_json_list(refined)
            if as_list:
                return list(dict.fromkeys(as_list))
        return await self.break_down(instance.instance, refined)

    async def redraft(self, instance: InstanceStarted, preferences: list[str]) -> str:
        """A new candidate, written by the writer with the task prompt and the latest preferences."""
        system, prompt = task_messages(
            self.ctx.task,
            self.ctx.framework,
            instance.document,
            "; ".join(preferences),
            self._examples.get(instance.instance, []),
            components=self.lines(preferences),
            examples_framed=self.examples_framed,
        )
        completion = await self.ctx.models.complete(
            "writer", "candidate", instance.instance, prompt, system=system
        )
        return written_text(self.ctx.framework, completion.text)

    async def break_down(self, instance: int, preferences: str) -> list[str]:
        """The preferences as a list of single components ([] when the answer is unusable).

        No call when they already are a JSON list; none for an empty string either, except
        under the released handling of unparseable answers (the released code asks)."""
        if not preferences.strip() and not self.released_failures:
            return []
        if self.released_answers:
            listed = released_json_list(preferences)
            if listed:  # already a list: no model call
                return list(dict.fromkeys(listed))
        else:
            listed = _as_json_list(preferences)
            if listed is not None:  # already a list: no model call
                return listed
        answer = await self.ask(
            "breakdown",
            instance,
            "prose_breakdown",
            _released_list if self.released_answers else parse_json_list,
            answer=JsonList(),
            preferences=preferences,
        )
        if self.released_answers:
            return list(dict.fromkeys(answer or []))
        return list(dict.fromkeys(a for a in answer or [] if a.strip()))

    # --- validation ----------------------------------------------------------------

    async def validate(
        self,
        instance: InstanceStarted,
        user_text: str,
        components: list[str],
        scores_of: dict | None = None,
    ) -> list[str]:
        """Keep the components the user's texts confirm; all are validated concurrently.

        Each component is checked against the new demonstration, then the user's earlier
        ones (most recent first). A cached verdict always counts; once a component has
        2+ verdicts whose mean magnitude exceeds 1.5, no new verdict is asked for it.
        An unparseable verdict counts as neutral (and is cached), as in the released code.
        ``scores_of`` receives each component's verdict scores.
        """
        cfg = self.config
        others = prose_order(
            await self.recall(instance, cfg.num_other_sequences),
            cfg.retrieved_order,
            self.settings.retrieval_mode,
        )
        demonstrations = [(instance.persona, instance.document_id, user_text)] + [
            (m.persona, m.document_id, m.user_text) for m in others
        ]
        show_others = cfg.include_preferences_in_validate
        read_verdict: Any = (
            _released_verdict
            if cfg.verdict_parsing == "released"
            else partial(parse_verdict, scale=VALIDATION_SCALE)
        )
        means: dict[str, float] = {}
        asked: dict[str, list[int]] = {}

        async def one(component: str) -> None:
            scores: list[int] = []
            for persona, document_id, text in demonstrations:
                key = (component, persona, document_id)
                if key not in self.verdicts:
                    if _settled(scores):
                        continue
                    verdict = await self.ask(
                        "validate",
                        instance.instance,
                        "prose_validate",
                        read_verdict,
                        answer=Choice.of(VALIDATION_SCALE),
                        component=component,
                        user_text=text,
                        others=[c for c in components if c != component] if show_others else None,
                        scale=VALIDATION_SCALE,
                    )
                    self.verdicts[key] = (
                        verdict if verdict is not None else VALIDATION_SCALE["neutral"]
                    )
                scores.append(self.verdicts[key])
            means[component] = sum(scores) / len(scores) if scores else math.inf
            asked[component] = scores

        await run_together([partial(one, component) for component in components])
        if scores_of is not None:  # in the components' order, whichever finished first
            scores_of.update((c, asked[c]) for c in components)
        return [c for c in components if means[c] > cfg.validation_threshold]


def _settled(scores: list[int]) -> bool:
    """Enough verdicts, strongly enough one way, to ask no more (cached ones still count)."""
    return (
        len(scores) >= EARLY_STOP_MIN_VERDICTS
        and abs(sum(scores) / len(scores)) > EARLY_STOP_MEAN_MAGNITUDE
    )


class IclProse(Prose):
    """ICL+PROSE: PROSE's preferences plus ICL's examples in the drafting prompt."""

    default_use_icl = True

"""PROSE: iteratively refine preferences against the user's text, break them
down into components, and keep only the components the user's writing confirms.

The learning step follows the paper's Algorithm 2 (design brief, section 3):
1. start from the preferences the draft was written with, the draft as candidate;
2. up to S refinement steps, stopping early when the candidate equals the
   user's text; unless it is the last step, draft a new candidate (iterate);
3. break the preferences down into a list of single components (skipped when
   they already are a JSON list);
4. validate each component against the new demonstration and up to k earlier
   ones on a 5-point scale, with cached verdicts and an early stop;
5. drop components whose mean score is at or below the threshold.
"""

from __future__ import annotations

import json
import math
import re

import anyio
import msgspec

from prose_sim.actors.inferrers.base import Inferrer, Learned, Retrieved
from prose_sim.actors.inferrers.settings import MethodSettings
from prose_sim.events import InstanceStarted
from prose_sim.parsing import parse_json_list, parse_preferences, parse_verdict
from prose_sim.scales import VALIDATION_SCALE
from prose_sim.templating import render

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


def _letters_digits(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def model_defaults(model: str) -> tuple[int, float]:
    """(S, threshold) for an agent model name, e.g. 'Qwen/Qwen2.5-7B-Instruct' -> (5, 0.25)."""
    name = _letters_digits(model.rsplit("/", 1)[-1])
    for prefix, steps, threshold in MODEL_DEFAULTS:
        if name.startswith(_letters_digits(prefix)):
            return steps, threshold
    return FALLBACK_DEFAULTS


def resolve_config(settings: MethodSettings, agent_model: str, use_icl: bool = False) -> ProseConfig:
    """Explicit knobs over the variant's over the model's defaults."""
    steps, threshold = model_defaults(agent_model)
    values: dict[str, object] = {
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
    """The refined preferences; a JSON-list answer is kept as JSON (breakdown then skips)."""
    preferences = parse_preferences(text)
    if preferences is None:
        return None
    listed = parse_json_list(text)
    if listed and "; ".join(listed) == preferences:
        return json.dumps(listed)
    return preferences


def split_components(preferences: str) -> list[str]:
    """Fallback breakdown when the model's answer is unusable: split on ';' and lines."""
    parts = re.split(r"[;\n]+", preferences)
    return [p.strip(" -*•\t") for p in parts if p.strip(" -*•\t")]


def _same_text(a: str, b: str) -> bool:
    return a.split() == b.split()


class Prose(Inferrer):
    knobs = frozenset(
        {
            "variant",
            "candidate_type",
            "num_refinement_steps",
            "do_validate",
            "breakdown",
            "validation_threshold",
            "num_other_sequences",
            "include_preferences_in_validate",
            "use_icl",
            "num_examples",
        }
    )
    default_use_icl = False

    def __init__(self, ctx, settings: MethodSettings = MethodSettings()):
        super().__init__(ctx, settings)
        self.config = resolve_config(settings, ctx.agent_model, self.default_use_icl)
        # (component, persona, document id) -> score: a verdict is never asked twice
        self.verdicts: dict[tuple[str, str, str], int] = {}
        self._examples: dict[int, list[tuple[str, str]]] = {}

    @classmethod
    def check(cls, settings: MethodSettings) -> tuple[str, str] | None:
        if settings.variant is not None and settings.variant not in VARIANTS:
            return "variant", f"unknown PROSE variant {settings.variant!r} (known: {', '.join(VARIANTS)})"
        return None

    # --- complete: the preferences to draft with ---------------------------------

    async def retrieve(self, instance):
        cfg = self.config
        items = await self.recall(instance, max(cfg.num_other_sequences, cfg.num_examples if cfg.use_icl else 0))
        earlier = items[: cfg.num_other_sequences]
        components = list(dict.fromkeys(c for m in earlier for c in m.components))
        preferences = ""
        if components:  # coalesce only when earlier preferences exist
            merged = await self.ask(
                "coalesce", instance.instance, "prose_coalesce", parse_preferences, components=components
            )
            preferences = merged if merged is not None else "; ".join(components)
        examples = [(m.document, m.user_text) for m in items[: cfg.num_examples]] if cfg.use_icl else []
        self._examples[instance.instance] = examples
        return Retrieved(preferences=preferences, examples=examples, retrieved=[m.persona for m in items])

    # --- learn: Algorithm 2 ----------------------------------------------------------

    async def learn(self, instance, draft, demonstration):
        cfg = self.config
        user_text = demonstration.text
        preferences = draft.preferences
        candidate = None if cfg.candidate_type == "none" else draft.text
        components: list[str] | None = None
        for step in range(cfg.num_refinement_steps):
            if candidate is not None and _same_text(candidate, user_text):
                break
            refined = await self.ask(
                "refine",
                instance.instance,
                "prose_refine",
                parse_refined,
                document=instance.document,
                preferences=preferences,
                candidate=candidate,
                user_text=user_text,
            )
            if refined is not None:
                preferences = refined
            if cfg.breakdown == "each_iteration":
                components = await self.break_down(instance.instance, preferences)
                preferences = json.dumps(components)
            last = step == cfg.num_refinement_steps - 1
            if cfg.candidate_type == "iterate" and not last:
                candidate = await self.redraft(instance, preferences)
        if components is None:
            if cfg.breakdown == "never":
                components = [preferences] if preferences.strip() else []
            else:
                components = await self.break_down(instance.instance, preferences)
        scores: dict[str, list[int]] = {}
        if cfg.do_validate and components:
            components = await self.validate(instance, user_text, components, scores)
        joined = "; ".join(components)
        self.remember(instance, user_text, joined, components)
        self._examples.pop(instance.instance, None)
        threshold = cfg.validation_threshold if scores else None
        return Learned(preferences=joined, components=components, validation=scores, threshold=threshold)

    async def redraft(self, instance: InstanceStarted, preferences: str) -> str:
        """A new candidate written with the refined preferences (the agent's drafting prompt)."""
        prompt = render(
            "draft",
            task=self.ctx.task,
            framework=self.ctx.framework,
            document=instance.document,
            preferences=preferences,
            examples=self._examples.get(instance.instance, []),
        )
        completion = await self.ctx.models.complete("agent", "candidate", instance.instance, prompt)
        return completion.text.strip()

    async def break_down(self, instance: int, preferences: str) -> list[str]:
        if not preferences.strip():
            return []
        listed = _as_json_list(preferences)
        if listed is not None:  # already a list: no model call
            return listed
        answer = await self.ask(
            "breakdown",
            instance,
            "prose_breakdown",
            parse_json_list,
            preferences=preferences,
        )
        if answer is None:
            return split_components(preferences)
        return list(dict.fromkeys(a for a in answer if a.strip()))

    # --- validation ----------------------------------------------------------------

    async def validate(
        self, instance: InstanceStarted, user_text: str, components: list[str], scores_of: dict | None = None
    ) -> list[str]:
        """Keep the components the user's texts confirm; all are validated concurrently.
        ``scores_of`` receives each component's verdict scores."""
        others = await self.recall(instance, self.config.num_other_sequences)
        demonstrations = [(instance.persona, instance.document_id, instance.document, user_text)] + [
            (m.persona, m.document_id, m.document, m.user_text) for m in others
        ]
        context = "; ".join(components) if self.config.include_preferences_in_validate else None
        means: dict[str, float] = {}
        asked: dict[str, list[int]] = {}

        async def one(component: str) -> None:
            scores: list[int] = []
            for persona, document_id, document, text in demonstrations:
                key = (component, persona, document_id)
                if key not in self.verdicts:
                    verdict = await self.ask(
                        "validate",
                        instance.instance,
                        "prose_validate",
                        lambda answer: parse_verdict(answer, VALIDATION_SCALE),
                        component=component,
                        document=document,
                        user_text=text,
                        preferences=context,
                        scale=VALIDATION_SCALE,
                    )
                    self.verdicts[key] = verdict if verdict is not None else 0
                scores.append(self.verdicts[key])
                if len(scores) >= EARLY_STOP_MIN_VERDICTS and abs(sum(scores) / len(scores)) > EARLY_STOP_MEAN_MAGNITUDE:
                    break
            means[component] = sum(scores) / len(scores) if scores else -math.inf
            asked[component] = scores

        async with anyio.create_task_group() as tg:
            for component in components:
                tg.start_soon(one, component)
        if scores_of is not None:  # in the components' order, whichever finished first
            scores_of.update((c, asked[c]) for c in components)
        return [c for c in components if means[c] > self.config.validation_threshold]


class IclProse(Prose):
    """ICL+PROSE: PROSE's preferences plus ICL's examples in the drafting prompt."""

    default_use_icl = True

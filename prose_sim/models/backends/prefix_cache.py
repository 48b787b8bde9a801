"""Reusing the KV states of shared prompt prefixes.

Prompts are cut into blocks of ``block`` tokens. A block is keyed by a hash
chained over every token up to its end (so a block matches only behind the
same prefix, as in vLLM's automatic prefix caching) and holds that block's
keys and values for every layer. A new prompt takes the longest run of cached
blocks from its start and prefills only the rest; a prompt's full blocks are
stored once its prefill is done. The cache holds at most ``max_tokens``
tokens, evicting the least recently used block first.

Hits and lookups are counted in tokens: ``hit_rate`` is the share of prompt
tokens that did not need computing.
"""

from __future__ import annotations

import hashlib
from array import array
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is an optional dependency, imported where it is used
    from torch import Tensor


class PrefixCache:
    def __init__(self, *, max_tokens: int, block: int = 32):
        if block < 1:
            raise ValueError("block must be at least 1")
        self.block = block
        self.max_blocks = max(0, max_tokens // block)
        self._blocks: OrderedDict[bytes, Tensor] = OrderedDict()
        self.lookup_tokens = 0  # prompt tokens looked up
        self.hit_tokens = 0  # of those, taken from the cache
        self.stored_blocks = 0
        self.evicted_blocks = 0

    @property
    def enabled(self) -> bool:
        return self.max_blocks > 0

    @property
    def tokens(self) -> int:
        return len(self._blocks) * self.block

    def hit_rate(self) -> float:
        return self.hit_tokens / self.lookup_tokens if self.lookup_tokens else 0.0

    def _keys(self, prompt: list[int], blocks: int) -> list[bytes]:
        keys, digest = [], b""
        for i in range(blocks):
            chunk = array("q", prompt[i * self.block : (i + 1) * self.block]).tobytes()
            digest = hashlib.blake2b(digest + chunk, digest_size=16).digest()
            keys.append(digest)
        return keys

    def lookup(self, prompt: list[int]):
        """``(tokens, kv)``: the cached prefix of ``prompt`` and its states ([layers, 2, heads, tokens, dim]).

        At least the prompt's last token is always left to compute (its logits
        start the answer). ``(0, None)`` on a miss.
        """
        import torch

        self.lookup_tokens += len(prompt)
        if not self.enabled or len(prompt) < 2:
            return 0, None
        found = []
        for key in self._keys(prompt, (len(prompt) - 1) // self.block):
            kv = self._blocks.get(key)
            if kv is None:
                break
            self._blocks.move_to_end(key)
            found.append(kv)
        if not found:
            return 0, None
        tokens = len(found) * self.block
        self.hit_tokens += tokens
        return tokens, torch.cat(found, dim=3)

    def store(self, prompt: list[int], read) -> None:
        """Keep ``prompt``'s full blocks; ``read(start, stop)`` gives the states of positions start..stop-1."""
        if not self.enabled:
            return
        for i, key in enumerate(self._keys(prompt, len(prompt) // self.block)):
            if key in self._blocks:
                self._blocks.move_to_end(key)
                continue
            self._blocks[key] = read(i * self.block, (i + 1) * self.block)
            self.stored_blocks += 1
            while len(self._blocks) > self.max_blocks:
                self._blocks.popitem(last=False)
                self.evicted_blocks += 1

    def clear(self) -> None:
        self._blocks.clear()

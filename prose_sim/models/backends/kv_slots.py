"""Per-row KV storage for iteration-level scheduling.

Each running request owns one *slot*: a row of a [rows, kv_heads, length,
head_dim] key and value tensor per layer, holding its tokens from position 0.
The active slots are always 0..n-1 (a leaving row's slot is filled by moving
the last row into it), so a decode step over every active row uses views of
the storage, never a gather. The storage grows (rows, length) when a row needs
more and is reallocated smaller when most of it is unused.

``SlotCache`` is handed to the model as its KV cache (``cache=`` /
``past_key_values=``): the attention layers call ``update(key, value,
layer_idx, ...)``, which writes the new keys and values at each row's own
position and returns the keys and values that step attends to. Before each
forward the scheduler says what the forward is (``for_decode`` or
``for_prefill``) and passes the matching 4-D attention mask, which the models
use as given.
"""

from __future__ import annotations

_LENGTH_STEP = 128  # lengths are allocated in multiples of this


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


class SlotCache:
    is_compileable = False  # read by some transformers code paths

    def __init__(self, *, layers: int, kv_heads: int, head_dim: int, dtype, device):
        self.layers, self.kv_heads, self.head_dim = layers, kv_heads, head_dim
        self.dtype, self.device = dtype, device
        self.keys: list = []
        self.values: list = []
        self.rows = 0  # allocated rows
        self.length = 0  # allocated positions per row
        self.lengths: list[int] = []  # tokens held by each active slot
        self._plan: tuple = ("none",)

    # ------------------------------------------------------------------ storage

    @property
    def active(self) -> int:
        return len(self.lengths)

    @property
    def allocated_tokens(self) -> int:
        return self.rows * self.length

    def token_bytes(self) -> int:
        """Bytes of keys and values per token, all layers."""
        import torch

        return (
            2
            * self.layers
            * self.kv_heads
            * self.head_dim
            * torch.empty((), dtype=self.dtype).element_size()
        )

    def _reallocate(self, rows: int, length: int) -> None:
        import torch

        shape = (rows, self.kv_heads, length, self.head_dim)
        keep_rows, keep_len = self.active, min(self.length, length, max(self.lengths, default=0))
        # layer by layer, each old layer let go as soon as it is copied: the peak is the new
        # storage plus one old layer, not the old and the new storage whole
        old_keys, old_values = self.keys, self.values
        self.keys, self.values = [], []
        for layer in range(self.layers):
            k = torch.zeros(shape, dtype=self.dtype, device=self.device)
            v = torch.zeros(shape, dtype=self.dtype, device=self.device)
            if keep_rows and keep_len:
                k[:keep_rows, :, :keep_len] = old_keys[layer][:keep_rows, :, :keep_len]
                v[:keep_rows, :, :keep_len] = old_values[layer][:keep_rows, :, :keep_len]
            if layer < len(old_keys):
                old_keys[layer] = old_values[layer] = None
            self.keys.append(k)
            self.values.append(v)
        self.rows, self.length = rows, length

    def reserve(self, rows: int, length: int, *, spare_rows: int = 0) -> None:
        """Room for ``rows`` active slots of ``length`` positions.

        When that needs new storage it is allocated for ``max(rows, spare_rows)``
        rows of exactly ``length`` (rounded up) positions: the caller decides how
        much headroom its memory budget allows.
        """
        if rows <= self.rows and length <= self.length:
            return
        self._reallocate(
            max(rows, spare_rows),
            _round_up(max(length, max(self.lengths, default=0)), _LENGTH_STEP),
        )

    def add(self) -> int:
        """A new, empty active slot (call ``reserve`` first); returns its index."""
        assert self.active < self.rows, "reserve() before add()"
        self.lengths.append(0)
        return self.active - 1

    def remove(self, slot: int) -> int | None:
        """Free ``slot``: the last active slot moves into it. Returns the index that moved, or None."""
        last = self.active - 1
        moved = None
        if slot != last:
            held = self.lengths[last]
            for layer in range(self.layers):
                self.keys[layer][slot, :, :held] = self.keys[layer][last, :, :held]
                self.values[layer][slot, :, :held] = self.values[layer][last, :, :held]
            self.lengths[slot] = held
            moved = last
        self.lengths.pop()
        return moved

    def clear(self) -> None:
        self.keys, self.values, self.rows, self.length, self.lengths = [], [], 0, 0, []

    def write(self, slot: int, start: int, blocks) -> None:
        """Copy precomputed keys and values ([layers, 2, kv_heads, tokens, head_dim]) to ``slot`` at ``start``."""
        tokens = blocks.shape[3]
        for layer in range(self.layers):
            self.keys[layer][slot, :, start : start + tokens] = blocks[layer, 0]
            self.values[layer][slot, :, start : start + tokens] = blocks[layer, 1]
        self.lengths[slot] = max(self.lengths[slot], start + tokens)

    def read(self, slot: int, start: int, stop: int):
        """A copy of ``slot``'s keys and values at positions start..stop-1: [layers, 2, kv_heads, n, head_dim]."""
        import torch

        return torch.stack(
            [
                torch.stack(
                    [self.keys[i][slot, :, start:stop], self.values[i][slot, :, start:stop]]
                )
                for i in range(self.layers)
            ]
        ).clone()

    # ------------------------------------------------------------------ one forward

    def for_decode(self, positions) -> None:
        """The next forward feeds one token per active slot, written at ``positions`` (int64 [n], = lengths)."""
        import torch

        n = self.active
        self._plan = (
            "decode",
            torch.arange(n, device=self.device),
            positions,
            max(self.lengths) + 1,
        )

    def for_prefill(self, slot: int, start: int, tokens: int) -> None:
        """The next forward feeds ``tokens`` prompt tokens of ``slot``, written from position ``start``."""
        self._plan = ("prefill", slot, start, tokens)

    def after_forward(self) -> None:
        mode = self._plan[0]
        if mode == "decode":
            self.lengths = [length + 1 for length in self.lengths]
        elif mode == "prefill":
            _, slot, start, tokens = self._plan
            self.lengths[slot] = max(self.lengths[slot], start + tokens)
        self._plan = ("none",)

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        mode = self._plan[0]
        if mode == "decode":
            _, rows, positions, width = self._plan
            keys[rows, :, positions] = key_states[:, :, 0]
            values[rows, :, positions] = value_states[:, :, 0]
            n = rows.shape[0]
            return keys[:n, :, :width], values[:n, :, :width]
        if mode == "prefill":
            _, slot, start, tokens = self._plan
            keys[slot, :, start : start + tokens] = key_states[0]
            values[slot, :, start : start + tokens] = value_states[0]
            return keys[slot : slot + 1, :, : start + tokens], values[
                slot : slot + 1, :, : start + tokens
            ]
        raise RuntimeError("SlotCache used without for_decode() or for_prefill()")

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return max(self.lengths, default=0)

    # ------------------------------------------------------------------ masks

    def decode_mask(self):
        """[n, 1, 1, width] bool: each row sees its own positions 0..length (the new token included)."""
        import torch

        width = max(self.lengths) + 1
        held = torch.tensor(self.lengths, device=self.device)
        return (torch.arange(width, device=self.device)[None, :] <= held[:, None])[:, None, None, :]

    def prefill_mask(self, start: int, tokens: int):
        """[1, 1, tokens, start + tokens] bool: causal over the slot's earlier positions and this chunk."""
        import torch

        query = torch.arange(start, start + tokens, device=self.device)[:, None]
        key = torch.arange(start + tokens, device=self.device)[None, :]
        return (key <= query)[None, None]

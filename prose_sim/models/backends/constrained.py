"""Constrained answers for the local engine: which tokens keep an answer in its shape.

A ``Constraint`` follows one request's answer token by token and says, before
each token, which tokens of the vocabulary may come next (a bool mask the
sampler applies to the logits). Two shapes (``prose_sim.models.answers``):

- ``Choice``: the answer is one of a few keywords; the state is the text so
  far, and a token is allowed when the text with it is still the start of a
  keyword;
- ``JsonList``: a JSON list of strings that the list parser takes as an
  answer: not empty, each string starting (after spaces) with a letter or
  digit, so never empty or a placeholder echoed from a prompt ("...",
  "<component1>"); recognised by a small character automaton (no ``\\u``
  escapes, no control characters in strings, spaces as the only whitespace).
  Each token's effect on each automaton state is worked out once per tokenizer
  (``TokenTable``), so a step is one table lookup.

- ``Reasoned``: free reasoning, then one line that starts with the label
  ("Preferences:") and holds an answer (opening with a letter or digit, not a
  placeholder's bracket); the
  answer ends with that line. The model reasons as it likes until only the
  line's share of the budget is left; then the label is spelled for it (unless
  it has written the label itself), and the line is its own.

All stop offering tokens that could not finish the answer within its token
budget, so a constrained answer always ends complete and parses. Why not a
library: outlines and lm-format-enforcer bring their own tokenizer adapters and
dependencies for general grammars; two fixed shapes need neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from prose_sim.models.answers import AnswerShape, Choice, JsonList, Reasoned

# the JSON-list automaton's states
# _FRESH: a string just opened, nothing but spaces in it yet
_START, _OPEN, _COMMA, _FRESH, _STRING, _ESCAPE, _AFTER, _DONE = range(8)
_STATES = 8
_REJECT = -1
_ESCAPES = frozenset('"\\/bfnrt')


def _json_char(state: int, char: str) -> int:
    """The automaton's next state after ``char`` (``_REJECT``: not a JSON list of strings)."""
    if state == _FRESH:
        return _FRESH if char == " " else _STRING if char.isalnum() else _REJECT
    if state == _STRING:
        if char == '"':
            return _AFTER
        if char == "\\":
            return _ESCAPE
        return _REJECT if ord(char) < 0x20 else _STRING
    if state == _ESCAPE:
        return _STRING if char in _ESCAPES else _REJECT
    if char == " " and state != _DONE:
        return state
    if state == _START:
        return _OPEN if char == "[" else _REJECT
    if state in (_OPEN, _COMMA):
        return _FRESH if char == '"' else _REJECT
    if state == _AFTER:
        return _COMMA if char == "," else _DONE if char == "]" else _REJECT
    return _REJECT


def json_state(text: str, state: int = _START) -> int:
    """The automaton's state after ``text``."""
    for char in text:
        state = _json_char(state, char)
        if state == _REJECT:
            break
    return state


class TokenTable:
    """What each token of a tokenizer spells, and its effect on the JSON-list automaton.

    Built once per engine, on the first constrained request (about a second for a
    50k vocabulary)."""

    def __init__(self, tokenizer, vocab: int, device, eos_ids: set[int]):
        import torch

        self.torch = torch
        self.vocab = vocab
        self.device = device
        self.eos_ids = sorted(i for i in eos_ids if 0 <= i < vocab)
        self.texts = _token_texts(tokenizer, vocab)
        self.by_text: dict[str, list[int]] = {}
        for token, text in enumerate(self.texts):
            if text:
                self.by_text.setdefault(text, []).append(token)
        self._json_next = None  # int8 [states, vocab], built on the first JSON-list answer
        self._json_dist: list[float] = []  # fewest tokens from each state to the list's end
        self._line_masks = None  # built on the first reasoned answer

    def mask(self, tokens: list[int]):
        out = self.torch.zeros(self.vocab, dtype=self.torch.bool, device=self.device)
        if tokens:
            out[self.torch.tensor(tokens, dtype=self.torch.long, device=self.device)] = True
        return out

    def json_tables(self):
        if self._json_next is None:
            torch = self.torch
            rows = [[_REJECT] * self.vocab for _ in range(_STATES)]
            for token, text in enumerate(self.texts):
                if text:
                    for state in range(_DONE):
                        rows[state][token] = json_state(text, state)
            reachable = [set(row) - {_REJECT} for row in rows]
            dist = [float("inf")] * _STATES
            dist[_DONE] = 0.0
            for _ in range(_STATES):
                for state in range(_DONE):
                    options = [dist[n] + 1 for n in reachable[state]]
                    dist[state] = min([dist[state], *options])
            self._json_next = torch.tensor(rows, dtype=torch.int8, device=self.device)
            self._json_dist = dist
        return self._json_next, self._json_dist

    def line_masks(self):
        """Bool [vocab] masks for a reasoned answer: (any text, no newline, spaces then a
        letter or digit (an answer's opening), spaces only, a newline only at the end)."""
        if self._line_masks is None:
            torch = self.torch

            def where(test) -> object:
                return torch.tensor([bool(t) and test(t) for t in self.texts], device=self.device)

            self._line_masks = (
                where(lambda t: True),
                where(lambda t: "\n" not in t),
                where(lambda t: "\n" not in t and t.lstrip(" ")[:1].isalnum()),
                where(lambda t: not t.strip(" ")),
                where(lambda t: "\n" in t and "\n" not in t.rstrip("\n")),
            )
        return self._line_masks


def _token_texts(tokenizer, vocab: int) -> list[str]:
    """The text each token adds after another token (so leading spaces survive), "" for
    special tokens and ids the tokenizer does not have."""
    special = set(tokenizer.all_special_ids)
    size = min(vocab, len(tokenizer))
    anchor = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("a"))[:1] or [0]
    base = tokenizer.decode(anchor, clean_up_tokenization_spaces=False)
    pairs = tokenizer.batch_decode(
        [[*anchor, token] for token in range(size)], clean_up_tokenization_spaces=False
    )
    texts = [
        "" if token in special or not pair.startswith(base) else pair[len(base) :]
        for token, pair in enumerate(pairs)
    ]
    return texts + [""] * (vocab - size)


@dataclass(eq=False)
class Constraint:
    """One answer's progress through its shape."""

    shape: AnswerShape
    table: TokenTable
    text: str = ""  # Choice: the answer so far
    state: int = _START  # JsonList: the automaton's state
    done: bool = False  # the answer is complete: it ends here
    _spell: dict[str, float] = field(default_factory=dict)
    # Reasoned: the answer on the label's line so far (None: still reasoning); the first
    # budget seen (the line's share is at most half of it)
    line: str | None = None
    budget: int = 0

    @classmethod
    def start(cls, shape: AnswerShape, table: TokenTable, prefix: str = "") -> Constraint:
        """A constraint for an answer that continues ``prefix`` (the response prefix): a
        JSON list already opened there (``Preferences: ["``) is continued, not reopened."""
        constraint = cls(shape=shape, table=table)
        if isinstance(shape, Reasoned):
            constraint.text = prefix
            constraint._find_label()
        elif isinstance(shape, JsonList) and "[" in prefix:
            state = json_state(prefix[prefix.index("[") :])
            constraint.state = state if state not in (_REJECT, _DONE) else _START
        return constraint

    def fewest_tokens(self) -> int:
        """The fewest tokens that complete the answer from here (the engine's floor for its
        token budget, so that a constrained answer can always end complete)."""
        if isinstance(self.shape, Choice):
            rests = [k[len(self.text) :] for k in self.shape.keywords if k.startswith(self.text)]
            best = min((self._fewest(rest) for rest in rests), default=0.0)
        elif isinstance(self.shape, Reasoned):
            if self.line is not None:
                return 0 if _has_answer(self.line) else 1
            best = self._fewest(self._label_rest()) + 1
        else:
            best = self.table.json_tables()[1][self.state]
        return int(best) if best != float("inf") else 0

    def allowed(self, remaining: int):
        """Bool [vocab]: the tokens that may come next, given ``remaining`` tokens of budget."""
        if isinstance(self.shape, Choice):
            return self.table.mask(self._choice_tokens(remaining))
        if isinstance(self.shape, Reasoned):
            return self._reasoned_tokens(remaining)
        next_states, dist = self.table.json_tables()
        row = next_states[self.state]
        torch = self.table.torch
        ok = [n for n in range(_STATES) if dist[n] <= remaining - 1]
        finishing = torch.isin(row, torch.tensor(ok, dtype=row.dtype, device=row.device))
        if not ok or not bool(finishing.any()):
            return row != _REJECT  # too little budget to finish anyway: keep to the shape
        return finishing

    def _choice_tokens(self, remaining: int) -> list[int]:
        keywords = [k for k in self.shape.keywords if k.startswith(self.text)]  # type: ignore[union-attr]
        tokens: set[int] = set()
        for keyword in keywords:
            rest = keyword[len(self.text) :]
            for cut in range(1, len(rest) + 1):
                if self._fewest(rest[cut:]) <= remaining - 1:
                    tokens.update(self.table.by_text.get(rest[:cut], ()))
        if self.text in keywords:  # a complete keyword that another one extends
            tokens.update(self.table.eos_ids)
        if not tokens and keywords:  # no budget left to finish: the shortest way on
            rest = min((k[len(self.text) :] for k in keywords if k != self.text), key=len)
            for cut in range(1, len(rest) + 1):
                tokens.update(self.table.by_text.get(rest[:cut], ()))
        return sorted(tokens)

    def _label_rest(self) -> str:
        """What is left to spell of the label and a space: the rest of it when the current
        line starts it, else all of it on a new line."""
        target = self.shape.label + " "  # type: ignore[union-attr]
        current = self.text[self.text.rfind("\n") + 1 :]
        if target.startswith(current):
            return target[len(current) :]
        return "\n" + target

    def _reasoned_tokens(self, remaining: int):
        """Reasoning: any token but the end; the label once only the line's share is left;
        on the line: spaces, then a letter or digit (not a placeholder's "[" or "<"), then
        any token, a line end or the end."""
        anything, one_line, opening, spaces, line_end = self.table.line_masks()
        if self.line is not None:
            if _has_answer(self.line):
                out = one_line | line_end
                out[self.table.eos_ids] = True
                return out
            return opening if remaining <= 1 else opening | spaces
        if not self.budget:
            self.budget = remaining
        share = min(self.shape.line_tokens, self.budget // 2)  # type: ignore[union-attr]
        rest = self._label_rest()
        if remaining > self._fewest(rest) + share:
            return anything
        tokens: set[int] = set()
        for cut in range(1, len(rest) + 1):
            if self._fewest(rest[cut:]) <= remaining - 2:  # and one token of answer
                tokens.update(self.table.by_text.get(rest[:cut], ()))
        if not tokens:  # too little budget left: the shortest way on
            for cut in range(1, len(rest) + 1):
                tokens.update(self.table.by_text.get(rest[:cut], ()))
        return self.table.mask(sorted(tokens))

    def _find_label(self) -> None:
        """Start the answer's line when the current line opens with the label."""
        current = self.text[self.text.rfind("\n") + 1 :]
        found = _labelled(self.shape.label).match(current)  # type: ignore[union-attr]
        if found:
            self.line = current[found.end() :]

    def _fewest(self, text: str) -> float:
        """The fewest tokens that spell ``text`` exactly."""
        if text not in self._spell:
            best = [0.0] + [float("inf")] * len(text)
            for end in range(1, len(text) + 1):
                for begin in range(end):
                    if text[begin:end] in self.table.by_text:
                        best[end] = min(best[end], best[begin] + 1)
            self._spell[text] = best[-1]
        return self._spell[text]

    def advance(self, token: int) -> None:
        """Take the chosen token; ``done`` once the answer is complete."""
        piece = self.table.texts[token] if 0 <= token < len(self.table.texts) else ""
        if isinstance(self.shape, Choice):
            self.text += piece
            self.done = self.text in self.shape.keywords and not any(
                k != self.text and k.startswith(self.text) for k in self.shape.keywords
            )
            return
        if isinstance(self.shape, Reasoned):
            if self.line is None:
                self.text += piece
                self._find_label()
            elif "\n" in piece and _has_answer(self.line + piece.split("\n", 1)[0]):
                self.done = True
            else:
                self.line += piece
            return
        self.state = json_state(piece, self.state)
        self.done = self.state == _DONE


def _has_answer(line: str) -> bool:
    return any(c.isalnum() for c in line)


def _labelled(label: str) -> re.Pattern[str]:
    """A line that opens with ``label`` (markdown decoration before it, as the parser takes)."""
    word = re.escape(label.rstrip(":"))
    return re.compile(rf"^[\s>*_#`\-+•]*{word}\s*[*_`]*\s*:", re.IGNORECASE)

"""Constrained answers: a verdict is one of the scale's keywords, a list is a JSON list of strings."""

from __future__ import annotations

import json

import anyio
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prose_sim.models.answers import Choice, JsonList, Reasoned
from prose_sim.models.backends.constrained import Constraint, json_state
from prose_sim.models.gateway import ModelClient, RoleModel
from prose_sim.models.protocol import Completion, ModelRequest, SamplingParams
from prose_sim.parsing import parse_json_list, parse_preferences, parse_verdict
from prose_sim.scales import FPM_SCALE, VALIDATION_SCALE

pytestmark = pytest.mark.anyio

_DONE = 7
_ITEM = st.builds(
    lambda spaces, first, rest: " " * spaces + first + rest,
    st.integers(0, 2),
    st.characters(categories=("L", "Nd")).filter(str.isalnum),
    st.text(alphabet=st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), max_size=12),
)


@settings(deadline=None)  # a loaded machine must not fail it on time
@given(st.lists(_ITEM, min_size=1, max_size=5))
def test_every_list_of_real_strings_is_accepted_by_the_automaton_and_parses(items):
    text = json.dumps(items, ensure_ascii=False)
    assert json_state(text) == _DONE
    assert parse_json_list(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        '["a",]',
        '["a" "b"]',
        "[1]",
        '["a\nb"]',
        '{"a": 1}',
        '"a"',
        "[]",
        '[""]',
        '["..."]',
        '["<x>"]',
    ],
)
def test_what_the_list_parser_would_refuse_is_rejected(text):
    assert json_state(text) != _DONE


# --- on the tiny model ---------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from prose_sim.models.local_loading import load_local_model
    from prose_sim.testing.tiny_model import tiny_test_model

    path = tiny_test_model(tmp_path_factory.mktemp("tiny"))
    model, tokenizer, device, _ = load_local_model(str(path), dtype="float32", device="cpu")
    return model, tokenizer, device


def shaped(i: int, answer, *, seed: int, budget: int, prefix: str = "", temperature=1.0):
    return ModelRequest(
        role="judge",
        purpose="judge_fpm",
        episode_id="e",
        instance=i,
        model="tiny",
        messages=[{"role": "user", "content": f"Answer {i}: which one?"}],
        params=SamplingParams(temperature=temperature, top_k=0, max_new_tokens=budget, seed=seed),
        response_prefix=prefix,
        answer=answer,
    )


async def serve(tiny, requests):
    from prose_sim.models.backends.local import LocalModelServer

    model, tokenizer, device = tiny
    results: dict[int, Completion] = {}
    async with LocalModelServer(model, tokenizer, device, name="tiny", max_wait_s=0.2) as server:

        async def one(i: int, r: ModelRequest) -> None:
            results[i] = await server.complete(r)

        async with anyio.create_task_group() as tg:
            for i, r in enumerate(requests):
                tg.start_soon(one, i, r)
    return [results[i] for i in range(len(requests))]


async def test_constrained_verdicts_always_parse_on_the_tiny_model(tiny):
    scales = [VALIDATION_SCALE, FPM_SCALE]
    requests = [
        shaped(i, Choice.of(scales[i % 2]), seed=i, budget=4 + i % 5, temperature=(i % 3) * 0.7)
        for i in range(40)
    ]
    for req, done in zip(requests, await serve(tiny, requests)):
        scale = scales[req.instance % 2]
        assert done.text in scale  # the keyword alone (the budget grows to fit the shortest)
        assert parse_verdict(done.text, scale) == scale[done.text]


async def test_constrained_lists_always_parse_on_the_tiny_model(tiny):
    prefixes = ["", "Preferences:", 'Preferences: ["']
    requests = [
        shaped(i, JsonList(), seed=i, budget=6 + i % 20, prefix=prefixes[i % 3]) for i in range(48)
    ]
    for req, done in zip(requests, await serve(tiny, requests)):
        assert done.output_tokens <= req.params.max_new_tokens
        listed = parse_json_list(done.text)
        assert listed is not None, done.text
        body = done.text[done.text.index("[") :] if "[" in done.text else done.text
        assert isinstance(json.loads(body), list)


async def test_an_unconstrained_request_is_served_as_before(tiny):
    free = shaped(0, None, seed=3, budget=12, temperature=0.0)
    again = msgspec.structs.replace(free, answer=Choice.of(FPM_SCALE))
    plain, constrained = await serve(tiny, [free, again])
    assert constrained.text in FPM_SCALE
    assert plain.text not in FPM_SCALE  # random weights: free text, not a keyword


# --- who asks, and who honours it ----------------------------------------------------


class Capture:
    def __init__(self):
        self.requests: list[ModelRequest] = []

    async def complete(self, backend, request, emit, prices):
        self.requests.append(request)
        return Completion(text="neutral", input_tokens=1, output_tokens=1)


@pytest.mark.parametrize("constrained", [False, True])
async def test_the_answer_shape_reaches_the_backend_only_for_constrained_roles(constrained):
    gateway = Capture()
    roles = {"judge": RoleModel(backend="b", model="m", constrained=constrained)}
    models = ModelClient(gateway, None, roles, "e", seed=1)  # type: ignore[arg-type]
    await models.complete("judge", "judge_fpm", 0, "which?", answer=Choice.of(FPM_SCALE))
    (sent,) = gateway.requests
    assert sent.answer == (Choice.of(FPM_SCALE) if constrained else None)


def test_a_request_without_a_shape_hashes_as_it_always_did():
    req = shaped(0, None, seed=1, budget=4)
    import hashlib

    old = msgspec.json.encode((req.model, req.messages, req.params, req.response_prefix))
    assert req.content_hash() == hashlib.blake2b(old, digest_size=12).hexdigest()
    assert msgspec.structs.replace(req, answer=JsonList()).content_hash() != req.content_hash()


async def test_the_openai_request_asks_for_an_object_root_wrapping_the_answer_and_unwraps_it(
    monkeypatch,
):
    from prose_sim.models.backends.openai_compat import OpenAIBackend, OpenAISettings
    from prose_sim.testing.chat_server import ChatServer

    with ChatServer() as server:
        backend = OpenAIBackend(
            OpenAISettings(base_url=server.base_url, api_key_env="X_KEY", max_connections=2), "k"
        )
        try:
            verdict_answer = await backend.complete(
                shaped(0, Choice.of(FPM_SCALE), seed=1, budget=16)
            )
            list_answer = await backend.complete(shaped(1, JsonList(), seed=1, budget=40))
            await backend.complete(shaped(2, None, seed=1, budget=4))
        finally:
            await backend.aclose()
        verdict, listed, free = (r["body"] for r in server.requests)

    def wrapped(inner):
        return {
            "type": "object",
            "properties": {"answer": inner},
            "required": ["answer"],
            "additionalProperties": False,
        }

    assert verdict["response_format"]["type"] == "json_schema"
    assert verdict["response_format"]["json_schema"]["schema"] == wrapped(
        {"type": "string", "enum": list(FPM_SCALE)}
    )
    assert listed["response_format"]["json_schema"]["schema"] == wrapped(
        {"type": "array", "items": {"type": "string"}}
    )
    assert "response_format" not in free
    # the server answered {"answer": ...}; the parsers get the value inside
    assert verdict_answer.text == f'"{next(iter(FPM_SCALE))}"'
    assert list_answer.text == '["use short sentences","use short sentences"]'


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 30), st.sampled_from(["", 'Preferences: ["']))
def test_any_path_the_mask_allows_ends_as_a_parseable_list(tiny, seed, budget, prefix):
    """Whatever token the model picks among the allowed ones, the list is closed in budget."""
    import random

    import torch

    from prose_sim.models.backends.constrained import TokenTable

    model, tokenizer, _ = tiny
    vocab = int(model.get_output_embeddings().weight.shape[0])
    table = TokenTable(tokenizer, vocab, "cpu", {tokenizer.eos_token_id})
    constraint = Constraint.start(JsonList(), table, prefix)
    budget = max(budget, constraint.fewest_tokens())  # as the engine does
    rng = random.Random(seed)
    tokens: list[int] = []
    while not constraint.done and len(tokens) < budget:
        allowed = torch.nonzero(constraint.allowed(budget - len(tokens))).squeeze(1).tolist()
        token = rng.choice(allowed)
        tokens.append(token)
        constraint.advance(token)
    assert constraint.done
    assert parse_json_list(prefix + tokenizer.decode(tokens)) is not None


# --- a reasoned answer: reasoning, then the "Preferences:" line -------------------------


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 80), st.integers(1, 60))
def test_any_path_the_mask_allows_ends_with_a_parseable_preferences_line(
    tiny, seed, budget, line_tokens
):
    """Whatever tokens the model picks among the allowed ones, the answer ends with a
    "Preferences:" line the refine parser reads, within the budget."""
    import random

    import torch

    from prose_sim.models.backends.constrained import TokenTable

    model, tokenizer, _ = tiny
    vocab = int(model.get_output_embeddings().weight.shape[0])
    table = TokenTable(tokenizer, vocab, "cpu", {tokenizer.eos_token_id})
    constraint = Constraint.start(Reasoned(line_tokens=line_tokens), table)
    budget = max(budget, constraint.fewest_tokens())  # as the engine does
    rng = random.Random(seed)
    tokens: list[int] = []
    while not constraint.done and len(tokens) < budget:
        allowed = torch.nonzero(constraint.allowed(budget - len(tokens))).squeeze(1).tolist()
        token = rng.choice(allowed)
        if token == tokenizer.eos_token_id:
            break
        tokens.append(token)
        constraint.advance(token)
    assert parse_preferences(tokenizer.decode(tokens)) is not None, tokenizer.decode(tokens)


def test_a_reasoned_answer_that_writes_its_own_label_keeps_its_line():
    """A model that writes "Preferences:" itself is not made to write it again."""
    table = _LetterTable()
    constraint = Constraint.start(Reasoned(), table)
    for piece in ["The user is brief.", "\n", "**Preferences:** ", "Be brief", "\n"]:
        constraint.advance(table.token(piece))
    assert constraint.done
    assert constraint.line is not None and constraint.line.endswith(" Be brief")


async def test_a_reasoned_answer_is_sent_to_an_openai_server_without_a_schema():
    from prose_sim.models.backends.openai_compat import OpenAIBackend, OpenAISettings
    from prose_sim.testing.chat_server import ChatServer

    with ChatServer() as server:
        backend = OpenAIBackend(
            OpenAISettings(base_url=server.base_url, api_key_env="X_KEY", max_connections=2), "k"
        )
        try:
            await backend.complete(shaped(0, Reasoned(), seed=1, budget=4))
        finally:
            await backend.aclose()
        (sent,) = (r["body"] for r in server.requests)
    assert "response_format" not in sent


class _LetterTable:
    """A token table whose tokens are the pieces a test spells (advance() needs only texts)."""

    def __init__(self):
        self.texts: list[str] = []

    def token(self, piece: str) -> int:
        self.texts.append(piece)
        return len(self.texts) - 1

"""The local model server: batching that changes nothing but speed."""

from __future__ import annotations

import anyio
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from prose_sim.models.backends.local import (  # noqa: E402
    LocalModelServer,
    LocalRequestRejected,
    LocalServerDown,
    LocalStepFailed,
)
from prose_sim.models.local_loading import load_local_model  # noqa: E402
from prose_sim.models.protocol import ModelRequest, SamplingParams  # noqa: E402
from prose_sim.testing.tiny_model import tiny_test_model  # noqa: E402

pytestmark = pytest.mark.anyio

PROMPTS = [
    "Summarize: the river rose overnight.",
    "Write an email about the broken heater in flat four, which nobody has fixed for a month.",
    "Hi",
    "Describe the library, the park, the harbour and the old mill in a few words each, please.",
    "Tell me about octopus colours.",
    "One more prompt of middling length for the batch.",
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tiny_test_model(tmp_path_factory.mktemp("tiny"))
    model, tokenizer, device, _dtype = load_local_model(str(path), dtype="float32", device="cpu")
    return model, tokenizer, device


def request(i, text, **params):
    return ModelRequest(
        role="agent",
        purpose="draft",
        episode_id="e",
        instance=i,
        model="tiny",
        messages=[{"role": "user", "content": text}],
        params=SamplingParams(**params),
    )


async def serve_all(tiny, requests, **kw):
    model, tokenizer, device = tiny
    server = LocalModelServer(model, tokenizer, device, name="tiny", **kw)
    results = {}
    async with server:

        async def one(i, r):
            results[i] = await server.complete(r)

        async with anyio.create_task_group() as tg:
            for i, r in enumerate(requests):
                tg.start_soon(one, i, r)
    return [results[i] for i in range(len(requests))], server


def one_at_a_time_greedy(tiny, server, req):
    model, tokenizer, _ = tiny
    ids = server.encode(req)
    out = model.generate(
        torch.tensor([ids]),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long),
        max_new_tokens=req.params.max_new_tokens,
        do_sample=False,
    )[0, len(ids) :].tolist()
    eos = tokenizer.eos_token_id
    return out[: out.index(eos)] if eos in out else out


async def test_greedy_outputs_equal_one_at_a_time_generate_token_for_token(tiny):
    requests = [request(i, p, max_new_tokens=12 + i) for i, p in enumerate(PROMPTS)]
    results, server = await serve_all(tiny, requests, max_batch_size=8, max_wait_s=0.2)
    assert server.stats.max_batch > 1  # they really were batched
    tokenizer = tiny[1]
    for req, done in zip(requests, results):
        expected = one_at_a_time_greedy(tiny, server, req)
        assert done.output_tokens == len(expected)
        assert done.text == tokenizer.decode(expected, skip_special_tokens=True)


async def test_requests_decode_together_without_padding_or_idle_rows(tiny):
    requests = [request(i, p, max_new_tokens=4 + 3 * i) for i, p in enumerate(PROMPTS)]
    results, server = await serve_all(tiny, requests, max_batch_size=4, max_wait_s=0.2)
    stats = server.stats.summary()
    assert stats["requests"] == 6 and stats["max_batch"] == 4  # never more rows than max_batch_size
    assert stats["mean_batch"] > 1  # rows really shared decode steps
    assert stats["padded_tokens"] == 0 and stats["padding_share"] == 0
    assert stats["idle_row_steps"] == 0  # every prompt fits one prefill chunk here: no row waits
    assert stats["generated_tokens"] == sum(r.output_tokens for r in results)
    assert stats["prompt_tokens"] == sum(len(server.encode(r)) for r in requests)
    assert stats["mean_queue_wait_s"] >= 0 and stats["batches"] >= 1


async def test_a_sampled_answer_depends_on_its_seed_not_on_its_batch(tiny):
    params = dict(temperature=0.9, top_p=0.9, top_k=20, repetition_penalty=1.1, max_new_tokens=10)
    alone, _ = await serve_all(tiny, [request(0, PROMPTS[0], seed=7, **params)])
    batched, _ = await serve_all(
        tiny,
        [request(i, p, seed=7 if i == 0 else i, **params) for i, p in enumerate(PROMPTS)],
        max_wait_s=0.2,
    )
    assert alone[0].text == batched[0].text
    other_seed, _ = await serve_all(tiny, [request(0, PROMPTS[0], seed=8, **params)])
    assert (
        other_seed[0].text != alone[0].text or other_seed[0].output_tokens != alone[0].output_tokens
    )


async def test_the_answer_starts_with_the_response_prefix(tiny):
    req = ModelRequest(
        role="agent",
        purpose="breakdown",
        episode_id="e",
        instance=0,
        model="tiny",
        messages=[{"role": "user", "content": "List them."}],
        params=SamplingParams(max_new_tokens=3),
        response_prefix="Preferences: [",
    )
    results, server = await serve_all(tiny, [req])
    assert results[0].text.startswith("Preferences: [")
    assert results[0].input_tokens == len(server.encode(req))


def failing_steps(server, failures):
    """Make the server's next ``failures`` iterations raise (a simulated out-of-memory)."""
    real_step = server.engine.step
    calls = []

    def step():
        calls.append(1)
        if len(calls) <= failures:
            raise RuntimeError("CUDA out of memory (simulated)")
        return real_step()

    server.engine.step = step
    return calls


async def test_a_failing_iteration_fails_its_requests_and_the_server_goes_on(tiny):
    model, tokenizer, device = tiny
    server = LocalModelServer(model, tokenizer, device, name="tiny")
    failing_steps(server, 1)
    async with server:
        with pytest.raises(LocalStepFailed, match="out of memory") as failed:
            await server.complete(request(0, "Hi", max_new_tokens=2))
        assert failed.value.retryable  # the gateway may try it again
        done = await server.complete(request(1, "Hi", max_new_tokens=2))
    assert 0 < done.output_tokens <= 2 and server.stats.failed == 1 and not server.down


async def test_a_server_whose_iterations_keep_failing_is_down_for_every_request(tiny):
    model, tokenizer, device = tiny
    server = LocalModelServer(model, tokenizer, device, name="tiny", max_step_failures=2)
    failing_steps(server, 100)
    async with server:
        with pytest.raises(LocalStepFailed):
            await server.complete(request(0, "Hi", max_new_tokens=2))
        with pytest.raises(
            LocalServerDown, match=r"is down: 2 iterations in a row failed.*out of memory"
        ) as down:
            await server.complete(request(1, "Hi", max_new_tokens=2))
        assert not down.value.retryable
        with pytest.raises(LocalServerDown):  # a new request fails at once
            await server.complete(request(2, "Hi", max_new_tokens=2))


async def test_a_prompt_too_long_for_the_model_fails_alone(tiny):
    long_text = "word " * 250  # the tiny model's context is 1024 tokens, one per byte
    results = {}
    model, tokenizer, device = tiny
    async with LocalModelServer(model, tokenizer, device, name="tiny") as server:

        async def one(i, r):
            try:
                results[i] = await server.complete(r)
            except LocalRequestRejected as exc:
                results[i] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(one, 0, request(0, long_text, max_new_tokens=2))
            tg.start_soon(one, 1, request(1, "Hi", max_new_tokens=2))
    assert isinstance(results[0], LocalRequestRejected) and "context holds 1024" in str(results[0])
    assert not results[0].retryable and not isinstance(results[0], LocalServerDown)
    assert results[1].output_tokens > 0 and not server.down and server.stats.rejected == 1


async def test_a_cancelled_request_leaves_the_batch_and_frees_its_row(tiny):
    model, tokenizer, device = tiny
    server = LocalModelServer(model, tokenizer, device, name="tiny", max_wait_s=0.0)
    server.engine.eos_ids = set()  # the long request would run its whole budget
    real_step = server.engine.step
    steps = []
    scope = anyio.CancelScope()

    def step():
        finished = real_step()
        steps.append(len(server.engine.running))
        if len(steps) == 3:  # the caller gives up while its request is decoding
            anyio.from_thread.run_sync(scope.cancel, token=server._token)
        return finished

    server.engine.step = step
    async with server:
        with scope:
            await server.complete(request(0, "Hi", max_new_tokens=400))
        assert scope.cancelled_caught
        after = await server.complete(request(1, "Hi", max_new_tokens=3))
    assert after.output_tokens == 3
    assert server.stats.cancelled == 1 and server.engine.stats.dropped == 1
    assert 0 < server.stats.cancelled_tokens < 400  # dropped mid-answer, not decoded to the end
    assert server.stats.served.size == 1 and not server.engine.running
    assert len(steps) < 3 + 400  # the dropped row did not keep the engine busy


async def test_complete_outside_the_server_context_is_an_error(tiny):
    model, tokenizer, device = tiny
    server = LocalModelServer(model, tokenizer, device, name="tiny")
    with pytest.raises(RuntimeError, match="not running"):
        await server.complete(request(0, "Hi"))


def test_a_scenario_runs_on_the_local_backend(tiny, tmp_path, write_scenario):
    from prose_sim.config import RunOptions
    from prose_sim.eventlog import read_events
    from prose_sim.events import BatchServed
    from prose_sim.runtime.prepare import prepare
    from prose_sim.runtime.runner import execute
    from prose_sim.scenario import load_scenario

    model_dir = tiny_test_model(tmp_path / "model")
    text = f"""
name = "local"
demonstrations_per_user = 2
[tasks.summarization]
personas = ["imdb"]
[methods.no_learning]
[methods.prose]
variant = "1sc"
[models.user]
backend = "local"
model = "{model_dir}"
max_new_tokens = 8
[models.agent]
backend = "local"
model = "{model_dir}"
max_new_tokens = 8
"""
    scenario = load_scenario(write_scenario(text))
    outcome = anyio.run(
        lambda: execute(prepare(scenario, tmp_path / "run", RunOptions(progress="off")))
    )
    assert outcome.status == "completed" and outcome.instances == 4
    assert len(outcome.servers) == 1  # user, writer and agent share one server
    served = sum(
        u["calls"] for u in outcome.usage if u["role"] in ("user", "writer", "agent")
    )  # judge: scripted
    assert outcome.servers[0]["requests"] == served
    batches = [
        e for e in read_events(tmp_path / "run" / "events.jsonl") if isinstance(e, BatchServed)
    ]
    assert sum(b.batch.size for b in batches) == served


def test_the_local_server_is_a_model_server_and_the_scripted_double_is_not(tiny):
    from prose_sim.models.backends.scripted import ScriptedBackend
    from prose_sim.models.protocol import ModelServer

    model, tokenizer, device = tiny
    assert isinstance(LocalModelServer(model, tokenizer, device, name="tiny"), ModelServer)
    assert not isinstance(ScriptedBackend(), ModelServer)

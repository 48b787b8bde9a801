"""What real OpenAI-compatible servers do, on the loopback double, and how prose_sim copes.

Each behaviour is switched on alone in ``prose_sim.testing.chat_server.ChatServer`` (what
transformers serve, llama.cpp, vLLM and OpenAI do is in docs/servers.md); each test first
shows the behaviour, then that prose_sim handles it. Assertions are on counts and texts,
never on durations.
"""

from __future__ import annotations

import json

import anyio
import msgspec
import pytest
import structlog

from prose_sim.cli import main
from prose_sim.eventlog import read_events
from prose_sim.events import ModelFailed, ModelResponded
from prose_sim.models.answers import Choice, JsonList
from prose_sim.models.backends import openai_compat
from prose_sim.models.backends.openai_compat import (
    OpenAIBackend,
    OpenAISettings,
    default_timeout_s,
    max_answer_chars,
)
from prose_sim.models.cache import ResponseCache
from prose_sim.models.gateway import Gateway, RetryPolicy
from prose_sim.models.protocol import (
    FatalModelError,
    ModelCallFailed,
    ModelRequest,
    RetryableModelError,
    SamplingParams,
)
from prose_sim.report.build import Report
from prose_sim.testing.chat_server import ChatServer

pytestmark = pytest.mark.anyio

KEY_ENV = "PROSE_SIM_TEST_KEY"
KEY = "sk-servers-test-0123456789"
MODEL = "served-model"
VERDICTS = ("yes", "no")


def ask(
    i: int = 0,
    *,
    model: str = MODEL,
    max_tokens: int = 64,
    answer=None,
    role: str = "judge",
    **params,
) -> ModelRequest:
    return ModelRequest(
        role=role,
        purpose="judge_ppcm",
        episode_id="e",
        instance=i,
        model=model,
        messages=[{"role": "user", "content": f"question {i}: is it so?"}],
        params=SamplingParams(max_new_tokens=max_tokens, seed=i, **params),
        answer=answer,
    )


def client(server: ChatServer, kind: str = "auto") -> OpenAIBackend:
    return OpenAIBackend(
        OpenAISettings(base_url=server.base_url, api_key_env=KEY_ENV, server=kind), KEY
    )


class Recorder:
    def __init__(self):
        self.events: list = []

    async def __call__(self, event):
        self.events.append(event)

    def of(self, kind):
        return [e for e in self.events if isinstance(e, kind)]


TWO_ATTEMPTS = RetryPolicy(attempts=2, backoff_s=0.0)


async def one_call(
    server: ChatServer,
    request: ModelRequest,
    *,
    kind: str = "auto",
    retry: RetryPolicy = TWO_ATTEMPTS,
    cache: ResponseCache | None = None,
) -> tuple[Recorder, object]:
    """One call through a gateway; (the events, the completion or the ModelCallFailed)."""
    backend = client(server, kind)
    gateway = Gateway(
        {"api": backend},
        retry,
        cache=cache,
        cache_ids={"api": backend.cache_identity} if cache is not None else None,
    )
    emit = Recorder()
    try:
        outcome: object = await gateway.complete("api", request, emit)
    except ModelCallFailed as failed:
        outcome = failed
    finally:
        await backend.aclose()
    return emit, outcome


# --- the server's reason, whatever its body's shape ---------------------------------------


@pytest.mark.parametrize("style", ["openai", "fastapi", "plain"])
async def test_the_servers_reason_reaches_the_event_whatever_the_bodys_shape(style):
    with ChatServer(error_style=style) as server:
        server.faults.extend(["500", "500"])
        emit, _ = await one_call(server, ask())
    assert server.statuses == [500, 500]
    (failed,) = emit.of(ModelFailed)
    assert "internal error" in failed.error and "HTTP 500" in failed.error


async def test_a_multi_line_error_keeps_its_cause_from_a_later_line():
    # llama-cpp-python's 500: a traceback, the cause on its last line
    with ChatServer(error_style="plain", response_format="json_object_only") as server:
        backend = client(server)
        try:
            with pytest.raises(FatalModelError) as error:
                await backend.complete(ask(answer=Choice.of(VERDICTS)))
        finally:
            await backend.aclose()
    assert "Traceback" in str(error.value)
    assert "'json_schema' is not supported" in str(error.value)  # the cause, four lines down
    assert "\n" not in str(error.value)  # one line: a console line, an event field


async def test_fastapi_validation_errors_are_named_by_their_location():
    class Answer422:
        status_code = 422
        response = None
        body = {"detail": [{"loc": ["body", "max_tokens"], "msg": "must be positive"}]}

    assert openai_compat.server_reason(Answer422()) == "body.max_tokens: must be positive"


# --- sampling parameters a server rejects --------------------------------------------------


async def test_sampling_parameters_a_server_rejects_stop_at_the_first_call_naming_the_key():
    with ChatServer(strict_fields=True, error_style="fastapi") as server:
        emit, outcome = await one_call(server, ask(top_k=20, repetition_penalty=1.05))
    assert len(server.requests) == 1  # not retried
    assert server.statuses == [422]
    (failed,) = emit.of(ModelFailed)
    assert "Unexpected fields in the request" in failed.error  # the server's words
    assert "models.judge.top_k = 0" in failed.error
    assert "models.judge.repetition_penalty = 1.0" in failed.error
    assert isinstance(outcome, ModelCallFailed)


QWEN_RUN = """
name = "servers"
seeds = [1235]
demonstrations_per_user = 1
[tasks.summarization]
personas = ["cnn_dailymail"]
[methods.no_learning]
[retry]
attempts = 3
backoff_s = 0.0
timeout_s = 5
{models}
"""


def models(base_url: str, model: str = MODEL, **extra: object) -> str:
    lines = []
    for role in ("user", "agent", "judge"):
        lines += [
            f"[models.{role}]",
            'backend = "openai"',
            f'model = "{model}"',
            f'base_url = "{base_url}"',
            f'api_key_env = "{KEY_ENV}"',
            "max_new_tokens = 64",
        ]
        lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines)


@pytest.fixture
def key(monkeypatch, tmp_path):
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))


def test_a_qwen_preset_against_a_strict_server_exits_2_at_the_first_call_naming_the_keys(
    write_scenario, tmp_path, key, capsys
):
    with ChatServer(strict_fields=True, error_style="fastapi") as server:
        text = QWEN_RUN.format(models=models(server.base_url, "Qwen/Qwen2.5-7B-Instruct"))
        code = main(["run", str(write_scenario(text)), "--out", str(tmp_path / "run")])
    assert code == 2
    assert len(server.requests) <= 4  # the calls already in flight, none after
    out = capsys.readouterr()
    assert "top_k = 0" in out.out + out.err and "Unexpected fields" in out.out + out.err


@pytest.mark.parametrize("kind", ["openai", "transformers"])
def test_a_server_kind_known_to_reject_top_k_is_refused_at_load(
    kind, write_scenario, tmp_path, key, capsys
):
    with ChatServer(strict_fields=True) as server:
        text = QWEN_RUN.format(
            models=models(server.base_url, "Qwen/Qwen2.5-7B-Instruct", server=kind)
        )
        code = main(["run", str(write_scenario(text)), "--out", str(tmp_path / "run")])
    assert code == 2 and server.requests == []
    err = capsys.readouterr().err
    assert "top_k = 20" in err and "top_k = 0" in err and "repetition_penalty = 1.0" in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("kind", "penalty_field"), [("vllm", "repetition_penalty"), ("llama.cpp", "repeat_penalty")]
)
async def test_servers_that_take_top_k_get_it_in_the_body(kind, penalty_field):
    with ChatServer() as server:
        emit, _ = await one_call(server, ask(top_k=20, repetition_penalty=1.05), kind=kind)
    body = server.requests[0]["body"]
    assert body["top_k"] == 20 and body[penalty_field] == 1.05
    assert len(emit.of(ModelResponded)) == 1


# --- models -----------------------------------------------------------------------------


def test_a_model_the_server_does_not_serve_stops_the_run_with_exit_2(
    write_scenario, tmp_path, key, capsys
):
    with ChatServer(serves="the-only-model", error_style="fastapi") as server:
        text = QWEN_RUN.format(models=models(server.base_url, "another-model"))
        code = main(["run", str(write_scenario(text)), "--out", str(tmp_path / "run")])
    assert code == 2
    assert set(server.statuses) == {400}
    assert len(server.requests) <= 4  # no retries, no further calls
    out = capsys.readouterr()
    assert "Server is pinned to 'the-only-model'; requested 'another-model'" in out.out + out.err


async def test_an_answer_from_another_model_is_warned_about_once_and_recorded():
    with ChatServer(serves="llama-3.gguf", other_models="accept") as server:
        backend = client(server)
        gateway = Gateway({"api": backend}, RetryPolicy(attempts=1))
        emit = Recorder()
        try:
            with structlog.testing.capture_logs() as logs:
                for i in range(3):
                    await gateway.complete("api", ask(i, model="gpt-4o"), emit)
        finally:
            await backend.aclose()
    assert [e.served_model for e in emit.of(ModelResponded)] == ["llama-3.gguf"] * 3
    warned = [x for x in logs if x["event"] == "server_answered_with_another_model"]
    assert len(warned) == 1 and warned[0]["answered"] == "llama-3.gguf"


def test_a_dated_snapshot_of_the_model_asked_is_the_same_model():
    assert openai_compat.same_model("gpt-4o", "gpt-4o-2024-08-06")
    assert not openai_compat.same_model("gpt-4o", "llama-3.gguf")


# --- structured output: honour, ignore, reject ------------------------------------------


async def test_a_server_that_ignores_response_format_is_reported_once_and_the_role_parses():
    with ChatServer(response_format="ignore", answer="I think so. Verdict: yes") as server:
        backend = client(server)
        try:
            with structlog.testing.capture_logs() as logs:
                texts = [
                    (await backend.complete(ask(i, answer=Choice.of(VERDICTS)))).text
                    for i in range(3)
                ]
        finally:
            await backend.aclose()
    assert all("response_format" in r["body"] for r in server.requests)
    assert texts == ["I think so. Verdict: yes"] * 3  # free text, for the verdict parser
    assert [x["event"] for x in logs].count("server_ignored_response_format") == 1


async def test_transformers_serve_is_sent_no_response_format_and_said_so_once():
    with ChatServer(response_format="ignore", answer="Verdict: no") as server:
        backend = client(server, "transformers")
        try:
            with structlog.testing.capture_logs() as logs:
                for i in range(2):
                    await backend.complete(ask(i, answer=JsonList()))
        finally:
            await backend.aclose()
    assert all("response_format" not in r["body"] for r in server.requests)
    assert [x["event"] for x in logs].count("server_ignores_response_format") == 1


async def test_llama_cpp_gets_json_object_with_a_schema_and_its_answer_is_unwrapped():
    with ChatServer(response_format="json_object_only", error_style="plain") as server:
        backend = client(server, "llama.cpp")
        try:
            verdict = await backend.complete(ask(answer=Choice.of(VERDICTS)))
        finally:
            await backend.aclose()
    fmt = server.requests[0]["body"]["response_format"]
    assert fmt["type"] == "json_object"
    assert fmt["schema"]["properties"]["answer"] == {"type": "string", "enum": ["yes", "no"]}
    assert verdict.text == '"yes"'


def test_json_schema_on_a_server_that_rejects_it_exits_2_naming_the_setting(
    write_scenario, tmp_path, key, capsys
):
    with ChatServer(response_format="json_object_only", error_style="plain") as server:
        text = QWEN_RUN.format(models=models(server.base_url, constrained=True))
        code = main(["run", str(write_scenario(text)), "--out", str(tmp_path / "run")])
    assert code == 2
    assert server.count(500) <= 4  # not retried three times per call
    out = capsys.readouterr()
    assert 'server to its kind (e.g. "llama.cpp"' in out.out + out.err


async def test_openai_gets_a_strict_object_root():
    with ChatServer() as server:
        await one_call(server, ask(answer=Choice.of(VERDICTS)), kind="openai")
    spec = server.requests[0]["body"]["response_format"]["json_schema"]
    assert spec["strict"] is True and spec["schema"]["type"] == "object"
    assert spec["schema"]["required"] == ["answer"]


# --- finish_reason --------------------------------------------------------------------------


async def test_finish_reason_length_is_recorded_on_the_answer():
    with ChatServer(answer="one two three four five six seven eight nine ten " * 5) as server:
        emit, _ = await one_call(server, ask(max_tokens=5))
        emit2, _ = await one_call(server, ask(1, max_tokens=500))
    assert [e.finish_reason for e in emit.of(ModelResponded)] == ["length"]
    assert [e.finish_reason for e in emit2.of(ModelResponded)] == ["stop"]


def test_old_logs_without_finish_reason_still_read():
    old = b'{"kind":"model_responded","request_id":"r","instance":0,"role":"judge",'
    old += (
        b'"purpose":"judge_ppcm","text":"yes","input_tokens":1,"output_tokens":1,"latency_s":0.1}'
    )
    event = msgspec.json.decode(old, type=ModelResponded)
    assert event.finish_reason == "" and event.served_model == "" and event.cut_from_chars == 0


def test_truncated_answers_are_counted_per_purpose_apart_from_parse_failures(
    write_scenario, tmp_path, key, capsys
):
    long = "Preferences: write short sentences, adopt a playful tone " * 20
    with ChatServer(answer=long) as server:
        text = QWEN_RUN.format(models=models(server.base_url))
        code = main(["run", str(write_scenario(text)), "--out", str(tmp_path / "run")])
    assert code == 0
    responded = [
        e for e in read_events(tmp_path / "run" / "events.jsonl") if isinstance(e, ModelResponded)
    ]
    assert responded and all(e.finish_reason == "length" for e in responded)
    console = capsys.readouterr().out
    assert "truncated answers (n/N):" in console
    report = Report([tmp_path / "run"]).markdown()
    assert "## Truncated model answers" in report
    infer = sum(e.purpose == "infer" for e in responded)
    if infer:
        assert f"| agent | infer | {infer}/{infer} |" in report


# --- deadlines and connections -------------------------------------------------------------


async def test_a_hanging_server_ends_the_call_at_the_default_deadline(monkeypatch):
    # the documented default (60 s + 0.2 s per max_new_tokens), scaled down for the test
    assert default_timeout_s(512) == 60 + 0.2 * 512
    monkeypatch.setattr(openai_compat, "DEFAULT_TIMEOUT_BASE_S", 0.05)
    monkeypatch.setattr(openai_compat, "DEFAULT_TIMEOUT_PER_TOKEN_S", 0.001)
    with ChatServer() as server:
        server.faults.extend(["hang", "hang"])
        with anyio.fail_after(30):  # the test's own guard, far above the deadline
            emit, outcome = await one_call(server, ask(max_tokens=50))
    (failed,) = emit.of(ModelFailed)
    assert isinstance(outcome, ModelCallFailed) and failed.attempts == 2
    assert "the default for max_new_tokens = 50" in failed.error


async def test_a_dripping_server_cannot_extend_the_attempts_deadline():
    with ChatServer(slow_s=0.01) as server:
        server.faults.append("drip")  # the headers, then a byte every 10 ms, forever
        with anyio.fail_after(30):
            emit, outcome = await one_call(
                server, ask(), retry=RetryPolicy(attempts=1, timeout_s=0.3)
            )
    assert isinstance(outcome, ModelCallFailed)
    assert "within the attempt's 0.3 s" in emit.of(ModelFailed)[0].error


async def test_a_cancelled_attempt_closes_its_connection():
    with ChatServer() as server:
        server.faults.append("hang")
        await one_call(server, ask(), retry=RetryPolicy(attempts=1, timeout_s=1.0))
        # the server sees the connection closed (it would otherwise hang until it stops)
        seen = await anyio.to_thread.run_sync(server.client_left.wait, 20)
    assert seen and server.abandoned == 1


async def test_a_one_at_a_time_server_keeps_working_after_the_client_left():
    with ChatServer(latency_s=0.3, one_at_a_time=True, keep_working=True) as server:
        backend = client(server)
        gateway = Gateway({"api": backend}, RetryPolicy(attempts=1, timeout_s=60))
        emit = Recorder()
        try:
            async with anyio.create_task_group() as tg:  # the client gives up mid-generation
                tg.start_soon(gateway.complete, "api", ask(), emit)
                assert await anyio.to_thread.run_sync(server.generating.wait, 20)
                tg.cancel_scope.cancel()
            assert await anyio.to_thread.run_sync(server.client_left.wait, 20)
            # the queue: the next request waits for the abandoned one, which goes on to its end
            await gateway.complete("api", ask(1), emit)
        finally:
            await backend.aclose()
    assert server.max_active == 1 and server.served == 2 and server.abandoned == 1


# --- empty, null, oversized answers; Retry-After ---------------------------------------------


@pytest.mark.parametrize("fault", ["empty", "null"])
async def test_an_empty_or_null_answer_is_retried_and_never_cached(fault, tmp_path):
    cache = ResponseCache(tmp_path / "responses.sqlite3")
    try:
        with ChatServer() as server:
            server.faults.extend([fault, fault])
            emit, outcome = await one_call(
                server, ask(), retry=RetryPolicy(attempts=2, backoff_s=0.0), cache=cache
            )
            assert isinstance(outcome, ModelCallFailed)
            assert "answered no text" in emit.of(ModelFailed)[0].error
            # the fixed server is asked again: nothing was cached
            emit2, _ = await one_call(server, ask(), cache=cache)
    finally:
        cache.close()
    assert len(server.requests) == 3
    (answered,) = emit2.of(ModelResponded)
    assert not answered.cached and answered.text


async def test_an_answer_far_beyond_max_new_tokens_is_cut_and_flagged():
    with ChatServer(huge_chars=2_000_000) as server:
        server.faults.append("huge")
        emit, _ = await one_call(server, ask(max_tokens=16))
    (answered,) = emit.of(ModelResponded)
    assert len(answered.text) == max_answer_chars(16)
    assert answered.cut_from_chars == 2_000_000


async def test_a_retry_after_beyond_the_cap_waits_the_cap_and_says_so_once():
    with ChatServer(retry_after_s=3600) as server:
        server.faults.extend(["429", "429"])
        with structlog.testing.capture_logs() as logs, anyio.fail_after(30):
            emit, _ = await one_call(
                server,
                ask(),
                retry=RetryPolicy(attempts=3, backoff_s=0.0, max_retry_after_s=0.01),
            )
    assert len(emit.of(ModelResponded)) == 1 and server.statuses == [429, 429, 200]
    capped = [x for x in logs if x["event"] == "retry_after_capped"]
    assert len(capped) == 1 and capped[0]["asked_s"] == 3600


# --- the double's own behaviours -----------------------------------------------------------


async def test_usage_can_come_from_a_real_tokenizer():
    with ChatServer(count_tokens=lambda text: len(text.encode()), answer="abc def") as server:
        backend = client(server)
        try:
            completion = await backend.complete(ask())
        finally:
            await backend.aclose()
    assert completion.output_tokens == len(b"abc def")
    assert completion.input_tokens == len(b"question 0: is it so?")


async def test_an_unexpected_error_is_retryable_and_keeps_its_class():
    with ChatServer(error_style="plain") as server:
        server.faults.append("500")
        backend = client(server)
        try:
            with pytest.raises(RetryableModelError) as error:
                await backend.complete(ask())
        finally:
            await backend.aclose()
    assert "500 error | internal error" in str(error.value)


def test_auto_is_openai_for_openais_api_and_other_elsewhere():
    resolve = openai_compat.resolve_server
    assert resolve("auto", "") == "openai"
    assert resolve("auto", "https://api.openai.com/v1") == "openai"
    assert resolve("auto", "http://127.0.0.1:8000/v1") == "other"
    assert resolve("vllm", "http://127.0.0.1:8000/v1") == "vllm"

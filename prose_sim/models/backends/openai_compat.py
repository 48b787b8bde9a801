"""The ``openai`` backend: any OpenAI-compatible chat-completions endpoint.

OpenAI itself, or a vLLM / SGLang / Ollama / llama.cpp server (``base_url``),
through the ``openai`` SDK's ``AsyncOpenAI`` over httpx. The SDK's own retries
are off: retries, rate limits, the concurrency cap and the cache live in the
gateway, once for every backend. The httpx pool is sized to the configured
concurrency (httpx's default pool stops at 100 connections).

The API key is read from the environment variable the scenario names
(``api_key_env``); it never appears in a scenario, event, log line or error
message: every error this backend raises is rebuilt from the status code and
the error text with the key scrubbed out, and chained to nothing.
"""

from __future__ import annotations

import os

import msgspec

from prose_sim import scrub
from prose_sim.errors import (
    FatalModelError,
    PermanentModelError,
    RateLimitedError,
    RetryableModelError,
    UnreachableError,
    UsageError,
)
from prose_sim.models.answers import AnswerShape, Choice, json_schema
from prose_sim.models.protocol import Completion, ModelRequest
from prose_sim.models.tokens import estimate_tokens

try:  # the SDK's transport: httpx2 (the SDK's newer releases), else httpx (openai 1.x)
    import httpx2 as httpx  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx  # type: ignore[import-not-found,no-redef,unused-ignore]

OPENAI_BASE_URL = "https://api.openai.com/v1"
# a wrong key, no permission, an unknown model or path: no retry and no other call can succeed
FATAL_STATUSES = (401, 403, 404)


class OpenAISettings(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str = ""  # "" = OpenAI's
    api_key_env: str = "OPENAI_API_KEY"
    max_connections: int = 100  # the httpx pool
    timeout_s: float = 600.0  # the SDK's own timeout; the gateway enforces the per-attempt one


def missing_key_message(env: str, where: str) -> str:
    return (
        f"{where}: the environment variable {env} holding the API key is not set. "
        f"Set it (export {env}=...), or point the model at another OpenAI-compatible server "
        f"with --set models.ROLE.base_url=http://HOST:PORT/v1 (and api_key_env naming a variable "
        f"that holds its key, any non-empty value for servers without keys), or run on the "
        f"embedded local model with --set models.agent.backend=local --set models.user.backend=local "
        f"--set models.judge.backend=local --set models.agent.model=smollm2-135m-instruct "
        f"--set models.user.model=smollm2-135m-instruct --set models.judge.model=smollm2-135m-instruct"
    )


def read_key(env: str, where: str = "models") -> str:
    key = os.environ.get(env, "")
    if not key:
        raise UsageError(missing_key_message(env, where))
    scrub.remember(key)
    return key


class OpenAIBackend:
    def __init__(self, settings: OpenAISettings, api_key: str):
        from openai import AsyncOpenAI

        self.settings = settings
        self.base_url = settings.base_url or OPENAI_BASE_URL
        self._key = api_key
        n = max(1, settings.max_connections)
        self._http = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            timeout=httpx.Timeout(settings.timeout_s, connect=min(30.0, settings.timeout_s)),
        )
        self._client = AsyncOpenAI(
            api_key=api_key,
            base_url=self.base_url,
            max_retries=0,  # retries belong to the gateway
            timeout=settings.timeout_s,
            http_client=self._http,
        )

    @property
    def cache_identity(self) -> str:
        """What names this backend in cache keys (never the key)."""
        return f"openai|{self.base_url}"

    async def aclose(self) -> None:
        await self._client.close()

    def _scrub(self, text: str) -> str:
        if self._key:
            text = text.replace(self._key, scrub.MASK)
        return scrub.scrub(text)

    async def complete(self, request: ModelRequest) -> Completion:
        import openai

        p = request.params
        extra: dict[str, object] = {}
        if p.top_k:
            extra["top_k"] = p.top_k
        if p.repetition_penalty != 1.0:
            extra["repetition_penalty"] = p.repetition_penalty
        shape = request.answer
        if shape is not None and json_schema(shape) is not None:  # the server's structured output
            extra["response_format"] = response_format(shape)
        try:
            response = await self._client.chat.completions.create(
                model=request.model,
                messages=request.messages,  # type: ignore[arg-type]
                temperature=p.temperature,
                top_p=p.top_p,
                max_tokens=p.max_new_tokens,
                seed=p.seed,
                extra_body=extra or None,
            )
        except openai.APIStatusError as exc:
            status = exc.status_code
            message = self._scrub(f"HTTP {status} from {self.base_url}: {_error_text(exc)}")
            if status == 429:
                raise RateLimitedError(message, retry_after=_retry_after(exc.response)) from None
            if status >= 500 or status == 408:
                raise RetryableModelError(message, retry_after=_retry_after(exc.response)) from None
            if status in FATAL_STATUSES:
                raise FatalModelError(message) from None
            raise PermanentModelError(message) from None
        except openai.APITimeoutError:
            raise RetryableModelError(f"timed out waiting for {self.base_url}") from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            kind = (
                UnreachableError if isinstance(cause, httpx.ConnectError) else RetryableModelError
            )
            raise kind(
                self._scrub(f"connection to {self.base_url} failed: {type(cause).__name__}")
            ) from None
        except openai.OpenAIError as exc:  # e.g. an answer that does not parse
            raise RetryableModelError(self._scrub(f"{type(exc).__name__}: {exc}")[:300]) from None
        choice = response.choices[0] if response.choices else None
        text = self._scrub((choice.message.content or "") if choice is not None else "")
        usage = response.usage
        if usage is not None:
            input_tokens, output_tokens = usage.prompt_tokens, usage.completion_tokens
        else:  # a server that does not report usage: estimate
            input_tokens = sum(estimate_tokens(m["content"]) for m in request.messages)
            output_tokens = estimate_tokens(text)
        return Completion(text=text, input_tokens=input_tokens, output_tokens=output_tokens)


def response_format(shape: AnswerShape) -> dict[str, object]:
    """The ``response_format`` of the chat-completions API for ``shape``: a JSON schema, the
    structured-output request vLLM, SGLang and OpenAI share (vLLM's ``guided_choice`` went
    in v0.12). A verdict comes back as a JSON string, which the verdict parser reads."""
    name = "verdict" if isinstance(shape, Choice) else "string_list"
    return {"type": "json_schema", "json_schema": {"name": name, "schema": json_schema(shape)}}


def _error_text(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])[:200]
    return str(getattr(exc, "message", "") or type(exc).__name__)[:200]


def _retry_after(response) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds), if given."""
    if response is None:
        return None
    headers = response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue
            if 0 <= seconds <= 600:
                return seconds
    return None

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

import json
import math
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

import msgspec
import structlog

from prose_sim import scrub
from prose_sim.errors import (
    FatalModelError,
    PermanentModelError,
    RateLimitedError,
    RetryableModelError,
    UnreachableError,
    UsageError,
)
from prose_sim.models.answers import AnswerShape, Choice, json_schema, unwrap, wrapped_schema
from prose_sim.models.protocol import Completion, ModelRequest
from prose_sim.models.tokens import estimate_tokens

try:  # the SDK's transport: httpx2 (the SDK's newer releases), else httpx (openai 1.x)
    import httpx2 as httpx  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the installed SDK
    import httpx  # type: ignore[import-not-found,no-redef,unused-ignore]

log = structlog.get_logger("prose_sim")

OPENAI_BASE_URL = "https://api.openai.com/v1"
# a wrong key, no permission, an unknown model or path: no retry and no other call can succeed
FATAL_STATUSES = (401, 403, 404)


# what a server does with the parts of a request that servers disagree on
# (docs/servers.md says how each was verified); "auto": OpenAI's for OpenAI's URL, else "other"
SERVER_KINDS = ("auto", "openai", "vllm", "llama.cpp", "transformers", "other")


class ServerRules(msgspec.Struct, frozen=True, kw_only=True):
    """How prose_sim talks to one kind of server."""

    # how a constrained answer is asked for: response_format "json_schema" (the schema with
    # an object root), "json_object" (with a "schema": llama.cpp), or "none" (the server
    # ignores response_format: the role's answers are parsed as free text)
    structured: str = "json_schema"
    strict: bool = False  # OpenAI's "strict": true (every property required, no others)
    # top_k and repetition_penalty: the body field each is sent as; empty: the server
    # rejects them (a scenario that sets them is refused at load, exit 2)
    sampling: dict[str, str] = {}


SERVER_RULES: dict[str, ServerRules] = {
    "openai": ServerRules(structured="json_schema", strict=True),
    # vLLM's extra sampling parameters are top-level fields of the request body
    "vllm": ServerRules(sampling={"top_k": "top_k", "repetition_penalty": "repetition_penalty"}),
    # llama-cpp-python's server and llama-server name the penalty repeat_penalty
    "llama.cpp": ServerRules(
        structured="json_object",
        sampling={"top_k": "top_k", "repetition_penalty": "repeat_penalty"},
    ),
    # transformers serve: response_format is logged and ignored; unknown fields are a 422
    "transformers": ServerRules(structured="none"),
    # an unknown server: the OpenAI request, the extra sampling fields as vLLM takes them; what
    # it rejects stops the run at the first call (exit 2), what it ignores is reported once
    "other": ServerRules(sampling={"top_k": "top_k", "repetition_penalty": "repetition_penalty"}),
}

# the sampling keys OpenAI's chat completions do not have, with their neutral values
EXTRA_SAMPLING = {"top_k": 0, "repetition_penalty": 1.0}


def resolve_server(server: str, base_url: str) -> str:
    """The server kind: ``server`` itself unless "auto", then "openai" for OpenAI's API (no
    ``base_url``, or api.openai.com), else "other"."""
    if server != "auto":
        return server
    if not base_url or urlsplit(base_url).hostname == "api.openai.com":
        return "openai"
    return "other"


def sampling_problem(kind: str, params: Mapping[str, object], where: str) -> str | None:
    """Why a server of ``kind`` cannot take the role's sampling keys (one line), or None."""
    if SERVER_RULES[kind].sampling:
        return None
    bad = [
        f"{where}.{k} = {params[k]}"
        for k, neutral in EXTRA_SAMPLING.items()
        if params[k] != neutral
    ]
    if not bad:
        return None
    drop = " and ".join(f"{where}.{k} = {v}" for k, v in EXTRA_SAMPLING.items())
    return (
        f"{', '.join(bad)}: servers of kind {kind!r} reject this sampling parameter (set from the model "
        f"name by the Qwen2.5 preset unless the scenario sets it); drop it with {drop}, or name a "
        f'server that takes it with {where}.server = "vllm" or "llama.cpp" (docs/servers.md)'
    )


def default_timeout_s(max_new_tokens: int) -> float:
    """The per-attempt deadline when ``[retry] timeout_s`` is not set: 60 s plus 0.2 s per
    token the answer may have (a server producing at least 5 tokens a second; 512 tokens:
    162 s, 4000: 860 s)."""
    return DEFAULT_TIMEOUT_BASE_S + DEFAULT_TIMEOUT_PER_TOKEN_S * max_new_tokens


DEFAULT_TIMEOUT_BASE_S = 60.0
DEFAULT_TIMEOUT_PER_TOKEN_S = 0.2


def max_answer_chars(max_new_tokens: int) -> int:
    """Characters an answer may have before it is cut and flagged: 32 per token (no
    tokenizer's token is that long) plus 4,096."""
    return 4096 + 32 * max_new_tokens


class OpenAISettings(msgspec.Struct, frozen=True, kw_only=True):
    base_url: str = ""  # "" = OpenAI's
    api_key_env: str = "OPENAI_API_KEY"
    max_connections: int = 100  # the httpx pool
    timeout_s: float = 600.0  # the SDK's own timeout; the gateway enforces the per-attempt one
    server: str = "auto"  # SERVER_KINDS


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
    remote = True  # the gateway gives its attempts a default deadline (default_timeout_s)

    def __init__(self, settings: OpenAISettings, api_key: str):
        from openai import AsyncOpenAI

        self.settings = settings
        self.base_url = settings.base_url or OPENAI_BASE_URL
        self.server = resolve_server(settings.server, settings.base_url)
        self.rules = SERVER_RULES[self.server]
        self._key = api_key
        self._said: set[str] = set()  # the warnings given (each once per backend)
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

    def _say_once(self, topic: str, event: str, **fields: object) -> None:
        """A warning, the first time only (per backend and ``topic``)."""
        if topic not in self._said:
            self._said.add(topic)
            log.warning(event, endpoint=self.base_url, **fields)

    def _body_extras(self, request: ModelRequest) -> dict[str, object]:
        """The fields beyond OpenAI's standard ones: sampling and structured output."""
        p = request.params
        extra: dict[str, object] = {}
        values = {"top_k": p.top_k, "repetition_penalty": p.repetition_penalty}
        for name, neutral in EXTRA_SAMPLING.items():
            if values[name] != neutral:  # a server without them is refused at load
                extra[self.rules.sampling.get(name, name)] = values[name]
        shape = request.answer
        # a constrained role: the server's structured output (a reasoned answer has no schema:
        # it is asked for freely)
        if shape is not None and json_schema(shape) is not None:
            fmt = response_format(shape, self.rules)
            if fmt is None:
                self._say_once(
                    "ignores_format",
                    "server_ignores_response_format",
                    role=request.role,
                    server=self.server,
                    detail="this server ignores response_format; constrained answers are "
                    "parsed as free text",
                )
            else:
                extra["response_format"] = fmt
        return extra

    async def complete(self, request: ModelRequest) -> Completion:
        import openai

        p = request.params
        extra = self._body_extras(request)
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
            raise self._status_error(exc, request, extra) from None
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
        return self._completion(request, response, "response_format" in extra)

    def _completion(self, request: ModelRequest, response, structured: bool) -> Completion:
        """The answer as prose_sim keeps it: checked, cut when far too long, unwrapped."""
        choice = response.choices[0] if response.choices else None
        if choice is None or choice.message.content is None:
            what = "no choices" if choice is None else "content null"
            # retried like a 5xx; a failed attempt is never cached
            raise RetryableModelError(f"{self.base_url} answered no text ({what})")
        text = self._scrub(choice.message.content)
        finish = str(choice.finish_reason or "")
        cut_from = 0
        limit = max_answer_chars(request.params.max_new_tokens)
        if len(text) > limit:
            cut_from, text = len(text), text[:limit]
            self._say_once(
                "oversized",
                "answer_cut",
                role=request.role,
                chars=cut_from,
                kept=limit,
                max_new_tokens=request.params.max_new_tokens,
            )
        if structured and request.answer is not None:
            inner = unwrap(text)
            if inner is not None:
                text = inner
            elif finish != "length" and not cut_from:
                self._say_once(
                    "ignored_format",
                    "server_ignored_response_format",
                    role=request.role,
                    detail="the answer is not the JSON asked for; this role's answers are "
                    "parsed as free text",
                )
        served = str(getattr(response, "model", "") or "")
        if served and not same_model(request.model, served):
            self._say_once(
                f"model:{request.model}:{served}",
                "server_answered_with_another_model",
                asked=request.model,
                answered=served,
                detail="recorded as served_model on every answer",
            )
        usage = response.usage
        if usage is not None:
            input_tokens, output_tokens = usage.prompt_tokens, usage.completion_tokens
        else:  # a server that does not report usage: estimate
            input_tokens = sum(estimate_tokens(m["content"]) for m in request.messages)
            output_tokens = estimate_tokens(text)
        return Completion(
            text=text,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=finish,
            served_model=served if served and served != request.model else "",
            cut_from_chars=cut_from,
        )

    def _status_error(self, exc, request: ModelRequest, extra: dict[str, object]) -> Exception:
        """The error for an HTTP error answer, with the server's reason (whatever its body's
        shape) and what to change when no call of the run can succeed."""
        status = exc.status_code
        reason = self._scrub(server_reason(exc))
        message = f"HTTP {status} from {self.base_url}: {reason}"[:MESSAGE_CHARS]
        retry_after = _retry_after(exc.response)
        if status == 429:
            return RateLimitedError(message, retry_after=retry_after)
        where = f"models.{request.role}"
        said = reason.lower()
        rejected = [k for k in extra if k != "response_format" and k.lower() in said]
        if status in (400, 422) and rejected:
            keys = {v: k for k, v in self.rules.sampling.items()}
            names = [keys.get(k, k) for k in rejected]
            drop = " and ".join(f"{where}.{n} = {EXTRA_SAMPLING.get(n, '...')}" for n in names)
            return FatalModelError(
                f"{message} | the server rejects the sampling parameter(s) {', '.join(names)}: "
                f"drop them with {drop} (the Qwen2.5 preset sets them from the model name), or "
                f"set {where}.server to a server kind that takes them (docs/servers.md)"
            )
        if "response_format" in extra and ("response_format" in said or "json_schema" in said):
            return FatalModelError(
                f"{message} | the server rejects the structured output sent for "
                f'{where}.constrained = true: set {where}.server to its kind (e.g. "llama.cpp": '
                f"json_object with a schema) or {where}.constrained = false (docs/servers.md)"
            )
        if status in FATAL_STATUSES or (status in (400, 422) and _names(reason, request.model)):
            return FatalModelError(message)  # a wrong key, no permission, a model not served
        if status >= 500 or status == 408:
            return RetryableModelError(message, retry_after=retry_after)
        return PermanentModelError(message)


# an error message kept in events and on the console (the reason first, after scrubbing)
MESSAGE_CHARS = 600


def _names(reason: str, model: str) -> bool:
    """True when ``reason`` names ``model`` as a word of its own (not inside another word)."""
    return re.search(rf"(?<![\w./-]){re.escape(model)}(?![\w./-])", reason) is not None


def same_model(asked: str, served: str) -> bool:
    """True when ``served`` is the model asked for: the same name, or a dated snapshot of it
    (OpenAI answers "gpt-4o-2024-08-06" to "gpt-4o")."""
    return served == asked or served.startswith(asked + "-")


def response_format(shape: AnswerShape, rules: ServerRules) -> dict[str, object] | None:
    """The ``response_format`` asking a server with ``rules`` for ``shape``: the shape
    wrapped in an object (``{"answer": ...}``; OpenAI's structured outputs want an object
    root), as ``json_schema`` or as llama.cpp's ``json_object`` with a ``schema``; None for
    a server that ignores it. The answer is unwrapped (``answers.unwrap``) on its way back."""
    schema = wrapped_schema(shape)
    match rules.structured:
        case "json_schema":
            name = "verdict" if isinstance(shape, Choice) else "string_list"
            spec: dict[str, object] = {"name": name, "schema": schema}
            if rules.strict:
                spec["strict"] = True
            return {"type": "json_schema", "json_schema": spec}
        case "json_object":
            return {"type": "json_object", "schema": schema}
        case _:
            return None


def server_reason(exc) -> str:
    """The server's reason for an error answer, as one line, whatever its body's shape:
    OpenAI's ``{"error": {"message": ...}}``, FastAPI's ``{"detail": ...}`` (a string, or
    validation errors with ``loc`` and ``msg``), ``{"error": "..."}``, ``{"message": ...}``,
    or plain text; the lines of a multi-line reason are joined with " | "."""
    response = getattr(exc, "response", None)
    raw = ""
    if response is not None:
        try:
            raw = response.text
        except Exception:  # a body that was never read (a streamed answer): say what is known
            raw = ""
    try:
        body: object = json.loads(raw) if raw else getattr(exc, "body", None)
    except ValueError:
        body = raw
    text = _reason_of(body) or raw or str(getattr(exc, "message", "") or type(exc).__name__)
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def _reason_of(body: object) -> str:
    match body:
        case {"error": {"message": message}}:
            return str(message)
        case {"error": str() as message}:
            return message
        case {"detail": str() as message}:
            return message
        case {"detail": list() as problems}:
            return "; ".join(
                f"{'.'.join(str(x) for x in p.get('loc', []))}: {p.get('msg', p)}"
                if isinstance(p, dict)
                else str(p)
                for p in problems
            )
        case {"message": message}:
            return str(message)
        case str():
            return body
        case None:
            return ""
        case _:
            return json.dumps(body)[:MESSAGE_CHARS]


def _retry_after(response) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds), if given (the gateway
    caps them: ``[retry] max_retry_after_s``)."""
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
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    return None

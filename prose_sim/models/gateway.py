"""The model gateway: every model call of a run goes through here.

It routes a request to the backend serving its role, retries failures with
exponential backoff and jitter, and records each call as events (requested,
responded or failed) on the asking episode's bus. Backends stay one method.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping

import anyio
import msgspec

from prose_sim.events import ModelFailed, ModelRequested, ModelResponded
from prose_sim.models.protocol import Backend, Completion, ModelCallFailed, ModelRequest, SamplingParams
from prose_sim.seeding import derive_seed

Emit = Callable[..., Awaitable[object]]


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    attempts: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    timeout_s: float | None = None  # per attempt

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter exponential backoff before retry number ``attempt`` (1-based)."""
        return rng.uniform(0, min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)))


class RoleModel(msgspec.Struct, frozen=True, kw_only=True):
    """What serves one role: the backend's key, the model name, sampling defaults."""

    backend: str
    model: str
    params: SamplingParams = SamplingParams()
    # start answers with the format keyword the prompt asks for (where the backend can)
    use_response_prefix: bool = True


def describe_error(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 300 else text[:297] + "..."


class Gateway:
    def __init__(self, backends: Mapping[str, Backend], retry: RetryPolicy = RetryPolicy()):
        self._backends = dict(backends)
        self.retry = retry
        self._jitter = random.Random(0)  # backoff jitter only; never affects results

    async def complete(self, backend: str, request: ModelRequest, emit: Emit) -> Completion:
        request_id = uuid.uuid4().hex[:16]
        await emit(
            ModelRequested,
            request_id=request_id,
            instance=request.instance,
            role=request.role,
            purpose=request.purpose,
            model=request.model,
            request_hash=request.content_hash(),
            messages=request.messages,
        )
        target = self._backends[backend]
        error = ""
        for attempt in range(1, self.retry.attempts + 1):
            started = time.perf_counter()
            try:
                if self.retry.timeout_s is None:
                    completion = await target.complete(request)
                else:
                    with anyio.fail_after(self.retry.timeout_s):
                        completion = await target.complete(request)
            except Exception as exc:  # any backend failure is retried, then recorded
                error = describe_error(exc)
                if attempt < self.retry.attempts:
                    await anyio.sleep(self.retry.delay(attempt, self._jitter))
                continue
            await emit(
                ModelResponded,
                request_id=request_id,
                instance=request.instance,
                role=request.role,
                purpose=request.purpose,
                text=completion.text,
                input_tokens=completion.input_tokens,
                output_tokens=completion.output_tokens,
                latency_s=time.perf_counter() - started,
                attempts=attempt,
            )
            return completion
        await emit(
            ModelFailed,
            request_id=request_id,
            instance=request.instance,
            role=request.role,
            purpose=request.purpose,
            error=error,
            attempts=self.retry.attempts,
        )
        raise ModelCallFailed(f"{request.role}/{request.purpose}: {error}")


class ModelClient:
    """An episode's handle on the gateway: fills in model, sampling and seed.

    Each request's sampling seed derives from the scenario seed and the request
    content (not from the episode or call order): the same prompt gets the same
    answer in every episode of that seed, so e.g. a PLUME user's demonstration
    of a document is identical across the methods being compared.
    """

    def __init__(
        self,
        gateway: Gateway,
        emit: Emit,
        roles: Mapping[str, RoleModel],
        episode_id: str,
        seed: int,
    ):
        self._gateway = gateway
        self._emit = emit
        self._roles = roles
        self._episode_id = episode_id
        self._seed = seed

    async def complete(
        self,
        role: str,
        purpose: str,
        instance: int,
        prompt: str,
        response_prefix: str = "",
        prefixed_max_tokens: int | None = None,
    ) -> Completion:
        """``prefixed_max_tokens`` caps the answer when the prefix is used (a keyword answer)."""
        served = self._roles[role]
        use_prefix = bool(response_prefix) and served.use_response_prefix
        params = served.params
        if use_prefix and prefixed_max_tokens:
            params = msgspec.structs.replace(
                params, max_new_tokens=min(params.max_new_tokens, prefixed_max_tokens)
            )
        messages = [{"role": "user", "content": prompt}]
        seed = derive_seed(self._seed, role, purpose, prompt) % (2**31)
        request = ModelRequest(
            role=role,
            purpose=purpose,
            episode_id=self._episode_id,
            instance=instance,
            model=served.model,
            messages=messages,
            params=msgspec.structs.replace(params, seed=seed),
            response_prefix=response_prefix if use_prefix else "",
        )
        return await self._gateway.complete(served.backend, request, self._emit)

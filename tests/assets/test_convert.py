"""The packaged GGUF models, converted once to safetensors and reused (slow: real SmolLM2 / Gemma-3)."""

from __future__ import annotations

import json
import time

import pytest
import torch

from selbench.assets import load_model, model_fingerprint
from selbench.assets.catalog import get_asset
from selbench.assets.convert import MARKER, converted_dir, ensure_converted

pytestmark = pytest.mark.slow

SMOL = "smollm2-135m-instruct"
SMOL_SYSTEM = (
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
)


def _require(name):
    missing = get_asset(name).missing_dists()
    if missing:
        pytest.skip(f"{name} not installed: {get_asset(name).pip_command(missing)}")


def _snapshot(folder):
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_smollm2_converts_once_then_loads_the_saved_copy():
    _require(SMOL)
    folder = ensure_converted(SMOL)  # converts on the first run of this session's model cache
    assert folder == converted_dir(SMOL) and (folder / MARKER).is_file()
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config and config["model_type"] == "llama"
    before = _snapshot(folder)

    start = time.perf_counter()
    model, tok = load_model(SMOL)
    seconds = time.perf_counter() - start
    assert _snapshot(folder) == before, "the cached conversion must not be rewritten"
    assert seconds < 60, f"cached load took {seconds:.1f} s"  # includes transformers imports on a busy CPU
    assert not model.training and model.name_or_path == SMOL
    assert not getattr(model, "is_quantized", False) and not hasattr(model.config, "quantization_config")
    start = time.perf_counter()
    load_model(SMOL)
    warm = time.perf_counter() - start
    assert warm < 5, f"cached load with imports done took {warm:.1f} s (target < 3 s on an idle CPU)"


def test_smollm2_chat_template_and_greedy_generation():
    _require(SMOL)
    model, tok = load_model(SMOL)
    assert tok.eos_token == "<|im_end|>" and tok.pad_token is not None and tok.model_max_length == 8192
    assert tok("Hello world")["input_ids"] == [19556, 905]  # SmolLM2 adds no BOS
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert (
        text
        == SMOL_SYSTEM + "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=10, do_sample=False)
    reply = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in reply, reply


def test_smollm2_fingerprint_is_cached_and_matches_the_folder():
    _require(SMOL)
    from selbench.assets.fingerprint import fingerprint_dir

    folder = ensure_converted(SMOL)
    start = time.perf_counter()
    fp = model_fingerprint(SMOL)
    assert time.perf_counter() - start < 0.5
    assert fp == fingerprint_dir(folder)


def test_lora_on_asset_records_the_asset_name_as_base(tmp_path):
    _require(SMOL)
    from peft import LoraConfig, get_peft_model

    model, tok = load_model(SMOL)
    torch.manual_seed(0)
    peft_model = get_peft_model(
        model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)
    ).eval()
    peft_model.save_pretrained(tmp_path / "adapter")
    assert (
        json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())["base_model_name_or_path"]
        == SMOL
    )
    loaded, tok = load_model(tmp_path / "adapter")
    ids = tok("Hi", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, peft_model(ids).logits)


def test_gemma3_converts_and_generates():
    _require("gemma3-270m")
    model, tok = load_model("gemma3-270m")
    assert type(model).__name__ == "Gemma3ForCausalLM"
    ids = tok("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_packaged_embedder_loads_offline():
    _require("all-minilm-l6-v2")
    from selbench.assets import load_embedder

    emb = load_embedder().encode(
        ["a cat sits on the mat", "a kitten is on the rug", "stock prices fell"], normalize_embeddings=True
    )
    assert emb.shape == (3, 384)
    sims = emb @ emb.T
    assert sims[0, 1] > sims[0, 2] + 0.2

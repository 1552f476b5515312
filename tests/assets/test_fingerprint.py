"""Model and tokenizer fingerprints: same bytes -> same hash anywhere; any changed byte -> new hash."""

from __future__ import annotations

import json
import shutil

import pytest

from selbench.assets import model_fingerprint


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    return folder


def _flip_last_byte(path):
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # inside the tensor data, past the safetensors header
    path.write_bytes(bytes(data))


def test_same_bytes_at_another_path_same_fingerprint(tiny_model_dir, model_copy):
    fp = model_fingerprint(model_copy)
    assert set(fp) == {"model_sha256", "tokenizer_sha256"}
    assert fp == model_fingerprint(str(tiny_model_dir))
    assert fp["model_sha256"] != fp["tokenizer_sha256"]


def test_weight_byte_changes_model_hash_only(model_copy):
    before = model_fingerprint(model_copy)  # also fills the stat-keyed cache, which must notice the edit
    _flip_last_byte(model_copy / "model.safetensors")
    after = model_fingerprint(model_copy)
    assert after["model_sha256"] != before["model_sha256"]
    assert after["tokenizer_sha256"] == before["tokenizer_sha256"]


def test_config_change_changes_model_hash(model_copy):
    before = model_fingerprint(model_copy)
    config = json.loads((model_copy / "config.json").read_text())
    config["rms_norm_eps"] = 1e-5
    (model_copy / "config.json").write_text(json.dumps(config))
    assert model_fingerprint(model_copy)["model_sha256"] != before["model_sha256"]


def test_chat_template_change_changes_tokenizer_hash_only(model_copy):
    from transformers import AutoTokenizer

    before = model_fingerprint(model_copy)
    tok = AutoTokenizer.from_pretrained(model_copy)
    tok.chat_template = tok.chat_template.replace("<|im_start|>", "<|im_start|> ", 1)
    tok.save_pretrained(model_copy)
    after = model_fingerprint(model_copy)
    assert after["tokenizer_sha256"] != before["tokenizer_sha256"]
    assert after["model_sha256"] == before["model_sha256"]


def test_adapter_fingerprint_covers_base_and_adapter(model_copy, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_copy)
    torch.manual_seed(0)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False)).save_pretrained(
        tmp_path / "adapter"
    )
    fp = model_fingerprint(tmp_path / "adapter")
    base_fp = model_fingerprint(model_copy)
    assert fp["tokenizer_sha256"] == base_fp["tokenizer_sha256"]  # saved without its own tokenizer
    assert fp["model_sha256"] != base_fp["model_sha256"]

    _flip_last_byte(tmp_path / "adapter" / "adapter_model.safetensors")
    fp_adapter_changed = model_fingerprint(tmp_path / "adapter")
    assert fp_adapter_changed["model_sha256"] != fp["model_sha256"]

    _flip_last_byte(model_copy / "model.safetensors")
    assert model_fingerprint(tmp_path / "adapter")["model_sha256"] != fp_adapter_changed["model_sha256"]

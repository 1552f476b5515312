"""load_model on real (tiny, random-init) 🤗 models: folders, LoRA adapters, options, hub errors."""

from __future__ import annotations

import shutil
import time

import pytest
import torch

from selbench.assets import load_model
from selbench.errors import InputError

PROMPT = "<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\n"


def _logits(model, tok, text=PROMPT):
    ids = tok(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(ids).logits


def test_local_folder_loads_same_model_in_eval_mode(tiny_model_dir, tiny_model):
    model, tok = load_model(str(tiny_model_dir))
    ref_model, ref_tok = tiny_model
    assert not model.training
    assert next(model.parameters()).dtype == torch.float32
    assert tok.padding_side == "right" and tok.pad_token == "<|pad|>"
    assert tok.chat_template == ref_tok.chat_template
    torch.testing.assert_close(_logits(model, tok), _logits(ref_model, ref_tok))


def test_options(tiny_model_dir):
    model, tok = load_model(tiny_model_dir, padding_side="left", dtype=torch.bfloat16, device="cpu")
    assert tok.padding_side == "left"
    assert next(model.parameters()).dtype == torch.bfloat16
    with pytest.raises(InputError, match="field 'padding_side'"):
        load_model(tiny_model_dir, padding_side="middle")
    with pytest.raises(InputError, match="field 'dtype'"):
        load_model(tiny_model_dir, dtype="int3")
    with pytest.raises(InputError, match="unknown load_model option.*temperature"):
        load_model(tiny_model_dir, temperature=0.1)


def test_missing_pad_token_falls_back_to_eos(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "nopad"
    shutil.copytree(tiny_model_dir, folder)
    tok = AutoTokenizer.from_pretrained(folder)
    tok.pad_token = None
    tok.save_pretrained(folder)
    assert AutoTokenizer.from_pretrained(folder).pad_token is None
    _, tok = load_model(folder)
    assert tok.pad_token == tok.eos_token == "<|im_end|>"


def _make_adapter(tiny_model_dir, out, seed=1):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    torch.manual_seed(seed)
    # init_lora_weights=False: random A and B, so the adapter changes the logits (B=0 would hide a bug
    # that loads the base without the adapter).
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft_model = get_peft_model(base, config).eval()
    peft_model.save_pretrained(out)
    return peft_model


def test_lora_adapter_folder_loads_base_then_adapter(tiny_model_dir, tiny_model, tmp_path):
    from peft import PeftModel

    in_memory = _make_adapter(tiny_model_dir, tmp_path / "adapter")
    model, tok = load_model(tmp_path / "adapter")
    assert isinstance(model, PeftModel) and not model.training
    want = _logits(in_memory, tok)
    torch.testing.assert_close(_logits(model, tok), want)
    base_logits = _logits(*tiny_model)
    assert not torch.allclose(want, base_logits, atol=1e-3), "adapter must change the logits"

    merged, tok = load_model(tmp_path / "adapter", merge=True)
    assert not isinstance(merged, PeftModel)
    torch.testing.assert_close(_logits(merged, tok), want, atol=1e-4, rtol=1e-4)


def test_adapter_with_missing_base_is_a_clear_error(tiny_model_dir, tmp_path):
    import json

    _make_adapter(tiny_model_dir, tmp_path / "adapter")
    cfg_path = tmp_path / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(tmp_path / "gone")
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="adapter_config.json: field 'base_model_name_or_path'"):
        load_model(tmp_path / "adapter")


def test_hub_spec_offline_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(InputError) as info:
        load_model("hf://selbench-test/no-such-model-xyz")
    message = str(info.value)
    assert "hf://selbench-test/no-such-model-xyz" in message and "HF_HUB_OFFLINE" in message
    assert "\n" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert time.perf_counter() - start < 30


def test_unknown_spec_is_an_input_error():
    with pytest.raises(InputError, match="did you mean 'smollm2-135m-instruct'"):
        load_model("smollm-135m-instruct")


def test_hub_model_loads_and_fingerprints_like_its_local_copy(local_hub, tiny_model_dir):
    """hf://org/name[@rev] through the real hub client, against a hub on 127.0.0.1 serving the tiny model."""
    import json
    import sys

    run, hub = local_hub({("model", "tiny-org/tiny"): tiny_model_dir})
    code = (
        "import json; from selbench.assets import load_model, model_fingerprint\n"
        "from selbench.errors import InputError\n"
        "model, tok = load_model('hf://tiny-org/tiny@main')\n"
        "out = {'cls': type(model).__name__, 'eval': not model.training, 'hub': model_fingerprint('hf://tiny-org/tiny'),\n"
        f"       'local': model_fingerprint({str(tiny_model_dir)!r})}}\n"
        "for bad in ('hf://tiny-org/missing', 'hf://tiny-org/tiny@no-such-branch'):\n"
        "    try:\n"
        "        load_model(bad)\n"
        "    except InputError as exc:\n"
        "        out[bad] = str(exc)\n"
        "print(json.dumps(out))\n"
    )
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["cls"] == "LlamaForCausalLM" and out["eval"]
    assert out["hub"] == out["local"]  # same files, same fingerprint: hub and local runs share cached steps
    assert "cannot load hf://tiny-org/missing" in out["hf://tiny-org/missing"]
    assert "@no-such-branch" in out["hf://tiny-org/tiny@no-such-branch"]
    assert any(r.startswith("GET /tiny-org/tiny/resolve/") and r.endswith("model.safetensors") for r in hub.requests)

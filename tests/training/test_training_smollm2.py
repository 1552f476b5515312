"""The packaged SmolLM2-135M-Instruct: a short LoRA demo run learns and its adapter loads back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selbench.data.schema import Example, write_examples
from selbench.training.presets import from_preset
from selbench.training.train import train

pytestmark = pytest.mark.slow


def test_smollm2_lora_demo_loss_falls_and_adapter_loads(tmp_path):
    from selbench.assets import load_model

    facts = [("capital of France", "Paris"), ("largest planet", "Jupiter"), ("author of Hamlet", "Shakespeare"),
             ("chemical symbol of gold", "Au"), ("fastest land animal", "the cheetah"), ("boiling point of water", "100 C"),
             ("smallest prime", "2"), ("colour of the sky", "blue")]
    examples = [Example(instruction=f"What is the {q}?", output=f"The {q} is {a}, zebra-style.") for q, a in facts]
    write_examples(examples, tmp_path / "data" / "data.parquet")
    config = from_preset("demo", lora=True, max_length=128, effective_batch_size=4, per_device_batch_size=4,
                         epochs=3, learning_rate=2e-3, warmup_ratio=0.0)
    result = train("smollm2-135m-instruct", tmp_path / "data", None, config, tmp_path / "out")
    out = Path(result["out"])
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == result["global_step"] == 6
    assert log[-1]["loss"] < log[0]["loss"], log
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == "smollm2-135m-instruct"
    model, tok = load_model(str(out))
    assert model is not None and tok.chat_template

"""End to end on a tiny random-init model: loss falls, LoRA round trip, resume, cache keys, outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from selbench.data.schema import Example, dataset_sha256, write_examples
from selbench.store import StepStore
from selbench.training.presets import from_preset
from selbench.training.train import train, train_key

WORDS = ["red", "green", "blue", "amber", "violet", "cyan", "olive", "coral"]


def make_data(root: Path, n: int = 8) -> Path:
    examples = [Example(instruction=f"Colour {i}?", output=f"{WORDS[i % 8]} " * (1 + i % 3)) for i in range(n)]
    write_examples(examples, root / "data" / "data.parquet")
    return root / "data"


def make_selection(path: Path, data: Path, ids: list[str]) -> Path:
    path.write_text(json.dumps({"ids": ids, "dataset": {"path": str(data), "sha256": dataset_sha256(data)}}))
    return path


def fast(**overrides):
    base = dict(effective_batch_size=8, per_device_batch_size=8, learning_rate=1e-2, warmup_ratio=0.0, max_length=64)
    return from_preset("demo", **{**base, **overrides})


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]


def test_loss_falls_memorising_eight_examples_and_outputs_are_complete(tiny_model_dir, tmp_path, monkeypatch):
    data = make_data(tmp_path)
    result = train(str(tiny_model_dir), data, None, fast(epochs=8), tmp_path / "out")
    out = Path(result["out"])
    log = read_log(out)
    assert [row["step"] for row in log] == list(range(1, 9))
    assert log[-1]["loss"] < log[0]["loss"] - 1.0, log
    assert all(row["tokens_per_s"] and row["tokens_per_s"] > 0 for row in log)
    assert result["train_tokens"] == log[-1]["tokens"] > 0
    assert result["tokens_per_s"] > 0 and result["cost_usd"] > 0 and not result["cached"]
    cost = json.loads((out / "cost.json").read_text())
    assert cost["step"] == "train" and cost["tokens"] == result["train_tokens"]
    assert json.loads((out / "train_config.json").read_text())["config"]["template"] == "chat"
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    # A cached run finds its result from the tokenizer and file hashes alone: it never loads the weights.
    from selbench.training import train as train_module

    def no_weights(*args, **kwargs):
        raise AssertionError("a cached run loaded the base model")

    monkeypatch.setattr(train_module, "load_base_model", no_weights)
    again = train(str(tiny_model_dir), data, None, fast(epochs=8), tmp_path / "out")
    assert again["cached"] and again["final_loss"] == result["final_loss"]


def test_lora_adapter_reloads_with_the_same_logits(tiny_model_dir, tmp_path):
    from transformers import TrainerCallback

    from selbench.assets import load_model

    probe = torch.tensor([[5, 17, 300, 42, 7]])
    seen = {}

    class Capture(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, **kwargs):
            model.eval()
            with torch.no_grad():
                seen["logits"] = model(input_ids=probe).logits.clone()

    data = make_data(tmp_path)
    config = fast(lora=True, lora_r=4, lora_alpha=8, lora_target_modules=("q_proj", "v_proj"), max_steps=3)
    result = train(str(tiny_model_dir), data, None, config, tmp_path / "adapter", callbacks=[Capture()])
    out = Path(result["out"])
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == str(Path(tiny_model_dir).resolve())
    assert adapter["r"] == 4 and sorted(adapter["target_modules"]) == ["q_proj", "v_proj"]
    model, _ = load_model(str(out))
    with torch.no_grad():
        reloaded = model(input_ids=probe).logits
        base, _ = load_model(str(tiny_model_dir))
        untouched = base(input_ids=probe).logits
    assert torch.allclose(reloaded, seen["logits"], atol=1e-5)
    assert not torch.allclose(untouched, seen["logits"], atol=1e-4)  # the adapter did change the model


class Interrupt(RuntimeError):
    pass


def test_killed_run_resumes_from_its_checkpoint(tiny_model_dir, tmp_path):
    from transformers import TrainerCallback

    class KillAfterStep3(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise Interrupt("simulated kill")

    data = make_data(tmp_path)
    store = StepStore(tmp_path / "cache")
    config = fast(max_steps=5, save_steps=2, epochs=10)
    with pytest.raises(Interrupt):
        train(str(tiny_model_dir), data, None, config, tmp_path / "out", store, callbacks=[KillAfterStep3()])
    partial = next((tmp_path / "cache" / "partial" / "train").iterdir())
    assert (partial / "checkpoints" / "checkpoint-2").is_dir()
    assert not (tmp_path / "out").exists()  # no partial output published
    result = train(str(tiny_model_dir), data, None, config, tmp_path / "out", store)
    assert result["resumed_from_step"] == 2 and result["global_step"] == 5
    assert [row["step"] for row in read_log(Path(result["out"]))] == [1, 2, 3, 4, 5]
    assert not partial.exists()  # progress folder removed once the step is stored


def test_every_input_of_the_key_changes_it(tiny_model_dir, tmp_path):
    from selbench.assets.tiny import build_tiny_model

    data = make_data(tmp_path / "a")
    model, tok = build_tiny_model(tmp_path / "model-b", seed=1)
    from selbench.data.schema import read_examples

    all_ids = [e.id for e in read_examples(data)]
    sel = make_selection(tmp_path / "sel.json", data, all_ids[:4])
    sel_other = make_selection(tmp_path / "sel2.json", data, all_ids[1:5])
    base = fast()
    key = train_key(str(tiny_model_dir), data, sel, base, tok, "fp32")
    assert key == train_key(str(tiny_model_dir), data, sel, base, tok, "fp32")
    variants = {
        "model": train_key(str(tmp_path / "model-b"), data, sel, base, tok, "fp32"),
        "dataset": train_key(str(tiny_model_dir), make_data(tmp_path / "b", n=9), None, base, tok, "fp32"),
        "selection": train_key(str(tiny_model_dir), data, sel_other, base, tok, "fp32"),
        "all-vs-selection": train_key(str(tiny_model_dir), data, None, base, tok, "fp32"),
        "precision": train_key(str(tiny_model_dir), data, sel, base, tok, "bf16"),
        "template": train_key(str(tiny_model_dir), data, sel, base.replace(template="alpaca"), tok, "fp32"),
    }
    changed = {
        "learning_rate": 1e-3, "optimizer": "sgd", "weight_decay": 0.1, "lr_scheduler": "cosine", "warmup_ratio": 0.2,
        "epochs": 3.0, "max_steps": 3, "max_grad_norm": 0.5, "effective_batch_size": 16, "per_device_batch_size": 4,
        "max_length": 128, "group_by_length": False, "packing": True, "loss_on_prompt": True, "lora": True,
        "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.1, "lora_target_modules": ("q_proj",), "seed": 1,
        "gradient_checkpointing": True, "deepspeed": "ds_zero2.json",
    }
    for field, value in changed.items():
        assert getattr(base, field) != value, f"{field} must differ from the base config to test it"
        variants[f"config.{field}"] = train_key(str(tiny_model_dir), data, sel, base.replace(**{field: value}), tok, "fp32")
    assert key not in variants.values()
    assert len(set(variants.values())) == len(variants)
    # Tokenizer bytes (chat template) are part of the model fingerprint.
    tok_dir = tmp_path / "model-c"
    model.save_pretrained(tok_dir)
    tok.chat_template = tok.chat_template.replace("\n", "\n\n", 1)
    tok.save_pretrained(tok_dir)
    assert train_key(str(tok_dir), data, sel, base, tok, "fp32") != variants["model"]


@pytest.mark.parametrize("template, strategy", [("chat", "bfd"), ("study", "wrapped")])
def test_packing_trains_with_our_and_the_studys_strategy(tiny_model_dir, tmp_path, template, strategy):
    data = make_data(tmp_path)
    config = fast(packing=True, template=template, max_steps=2, effective_batch_size=2, per_device_batch_size=2)
    result = train(str(tiny_model_dir), data, None, config, tmp_path / "out")
    saved = json.loads((Path(result["out"]) / "train_config.json").read_text())
    assert result["global_step"] == 2 and result["train_tokens"] > 0
    assert saved["config"]["loss_on_prompt"] is (template == "study")
    assert saved["stats"]["packing_strategy"] == strategy


def test_a_model_trained_on_the_alpaca_prompt_is_evaluated_with_it(tiny_model_dir, tmp_path):
    """Review finding: evaluation used the base tokenizer's chat template whatever the training format."""
    from selbench.assets import load_model
    from selbench.generation.hf import HFBackend
    from selbench.training.alpaca import alpaca_prompt

    data = make_data(tmp_path)
    result = train(str(tiny_model_dir), data, None, fast(epochs=1, template="alpaca"), tmp_path / "out")
    model, tok = load_model(result["out"])
    text, templated = HFBackend(model, tok).render([{"role": "user", "content": "Colour 1?"}])
    assert templated and text == alpaca_prompt("Colour 1?")


def test_study_packing_continues_long_examples_instead_of_truncating(tiny_model_dir, tmp_path):
    """TRL's ConstantLengthDataset (the study's packing) cut the concatenated stream into rows; examples longer
    than max_length were split across rows, not truncated first (review finding)."""
    long = [Example(instruction=f"Tell story {i}.", output=" ".join(WORDS) * 6) for i in range(4)]
    write_examples(long, tmp_path / "data" / "data.parquet")
    result = train(str(tiny_model_dir), tmp_path / "data", None,
                   fast(epochs=1, template="study", packing=True, max_length=32), None)
    assert result["train_tokens"] > 4 * 32  # more than 4 truncated examples could hold


def _bad_selection(tmp_path, data, manifest, text=None) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(text if text is not None else json.dumps(manifest))
    return path


def test_malformed_selection_manifests_are_input_errors_naming_file_and_field(tmp_path):
    """Review finding 5: a list among the ids and a string `dataset` crashed (exit 1); repeated ids and a wrong
    `ids_sha256` trained silently."""
    from selbench.data.schema import read_examples
    from selbench.errors import InputError
    from selbench.hashing import sha256_lines
    from selbench.training.train import load_selection

    data = make_data(tmp_path)
    ids = [e.id for e in read_examples(data)]
    sha = dataset_sha256(data)
    cases = {
        "list-id": ({"ids": [[ids[0]]]}, "ids", "got list"),
        "repeat": ({"ids": [ids[0], ids[1], ids[0]]}, "ids", "repeats entry 1"),
        "dataset-str": ({"ids": ids[:2], "dataset": "x"}, "dataset", "expected an object"),
        "sha-not-str": ({"ids": ids[:2], "dataset": {"sha256": 5}}, "dataset.sha256", "sha256 string"),
        "other-dataset": ({"ids": ids[:2], "dataset": {"sha256": "0" * 64}}, "dataset.sha256", "selection was made on"),
        "ids-sha": ({"ids": ids[:2], "ids_sha256": "deadbeef"}, "ids_sha256", "not the sha256 of the ids"),
        "not-object": (ids[:2], None, "expected a JSON object"),
    }
    for name, (manifest, field, needle) in cases.items():
        with pytest.raises(InputError) as exc:
            load_selection(data, _bad_selection(tmp_path, data, manifest))
        assert exc.value.field == field and needle in exc.value.message, (name, exc.value.one_line())
        assert exc.value.path == str(tmp_path / "bad.json"), name
    good = {"ids": ids[:3], "ids_sha256": sha256_lines(ids[:3]), "dataset": {"sha256": sha}}
    examples, _, ids_sha = load_selection(data, _bad_selection(tmp_path, data, good))
    assert [e.id for e in examples] == ids[:3] and ids_sha == sha256_lines(ids[:3])


def test_a_bad_id_is_reported_at_its_line_in_the_file(tmp_path):
    """Review finding 8: the error gave the id's list position as FILE:LINE; editors jumped to the wrong line."""
    from selbench.data.schema import read_examples
    from selbench.errors import InputError
    from selbench.training.train import load_selection

    data = make_data(tmp_path)
    ids = [e.id for e in read_examples(data)][:3]
    manifest = {"strategy": "random", "dataset": {"sha256": dataset_sha256(data), "ids": ["decoy"]}, "ids": [*ids, "zzzz"]}
    text = json.dumps(manifest, indent=2)
    expected_line = text.splitlines().index('    "zzzz"') + 1
    with pytest.raises(InputError) as exc:
        load_selection(data, _bad_selection(tmp_path, data, None, text))
    assert exc.value.line == expected_line > 5 and exc.value.field == "ids"
    assert "'zzzz' is not in" in exc.value.message and "entry 4 of 'ids'" in exc.value.message
    with pytest.raises(InputError) as exc:  # all on one line: line 1, the entry named in the message
        load_selection(data, _bad_selection(tmp_path, data, {"ids": [ids[0], "zzzz"]}))
    assert exc.value.line == 1 and "entry 2 of 'ids'" in exc.value.message


def test_deepspeed_config_content_is_in_the_key(tiny_model_dir, tmp_path):
    """Review finding 7: the key held the DeepSpeed JSON's path only, so editing the file reused the old run."""
    from selbench.assets import load_tokenizer

    data = make_data(tmp_path)
    tok = load_tokenizer(str(tiny_model_dir))
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"zero_optimization": {"stage": 2}, "gradient_clipping": "auto"}))
    config = fast(deepspeed=str(ds))
    before = train_key(str(tiny_model_dir), data, None, config, tok, "fp32")
    assert before == train_key(str(tiny_model_dir), data, None, config, tok, "fp32")
    ds.write_text(json.dumps({"zero_optimization": {"stage": 3}, "gradient_clipping": 0.1}))
    assert train_key(str(tiny_model_dir), data, None, config, tok, "fp32") != before

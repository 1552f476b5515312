"""cached_generate: cache hits, resumption from finished shards, and a key that covers every input."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from selbench.assets.fingerprint import model_fingerprint
from selbench.generation.base import GenerationConfig
from selbench.generation.cached import STEP, VERSION, cached_generate, generation_key_parts
from selbench.store import ShardProgress, StepStore, step_key

PROMPTS = [[{"role": "user", "content": f"question {i}"}] for i in range(4)] + ["plain prompt"]
CONFIG = GenerationConfig.greedy(max_new_tokens=4, batch_size=2)


def test_second_call_is_a_cache_hit(tiny_model_dir):
    store = StepStore()
    first = cached_generate(tiny_model_dir, "unit", PROMPTS, CONFIG, store)
    assert not first.cached and len(first.outputs) == len(PROMPTS)
    assert first.stats["n"] == len(PROMPTS) and first.stats["new_tokens"] > 0
    assert first.cost["tokens"] > 0
    second = cached_generate(tiny_model_dir, "unit", PROMPTS, CONFIG, store)
    assert second.cached and second.key == first.key and second.outputs == first.outputs


def test_outputs_match_the_backend_run_directly(tiny_model_dir, tiny_model):
    from selbench.generation.hf import HFBackend

    model, tok = tiny_model
    direct = HFBackend(model, tok).generate(PROMPTS, CONFIG)
    assert cached_generate(tiny_model_dir, "unit", PROMPTS, CONFIG, model=model, tokenizer=tok).outputs == direct


def test_resumes_from_finished_shards(tiny_model_dir):
    store = StepStore()
    step_config, inputs = generation_key_parts(model_fingerprint(tiny_model_dir), "unit", PROMPTS, CONFIG, "hf")
    key = step_key(STEP, VERSION, step_config, inputs)
    # A previous, interrupted run finished shard 0 (prompts 0-1); its outputs must be reused, not redone.
    shards = ShardProgress(store.partial_dir(STEP, key), len(PROMPTS), 2, fmt="json")
    shards.save(0, {"outputs": ["kept 0", "kept 1"], "seconds": 5.0, "prompt_tokens": 7, "new_tokens": 3})
    result = cached_generate(tiny_model_dir, "unit", PROMPTS, CONFIG, store, shard_size=2)
    assert result.key == key
    assert result.outputs[:2] == ["kept 0", "kept 1"]
    assert result.stats["resumed_shards"] == 1
    assert result.cost["wall_seconds"] >= 5.0  # the earlier run's time is charged once, with the step
    assert not (store.root / "partial" / STEP / key).exists()  # progress folder removed once complete


def _key(fingerprint, benchmark=None, prompts=None, config=None, backend="hf"):
    step_config, inputs = generation_key_parts(fingerprint, benchmark or "unit", prompts or PROMPTS, config or CONFIG,
                                               backend)
    return step_key(STEP, VERSION, step_config, inputs)


def test_key_changes_with_every_input(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    base_fp = model_fingerprint(tiny_model_dir)
    base = _key(base_fp)
    assert _key(dict(base_fp)) == base
    keys = {"base": base}

    weights = tmp_path / "weights"
    shutil.copytree(tiny_model_dir, weights)
    tensors = load_file(weights / "model.safetensors")
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, weights / "model.safetensors", metadata={"format": "pt"})
    keys["model weights"] = _key(model_fingerprint(weights))

    template = tmp_path / "template"
    shutil.copytree(tiny_model_dir, template)
    cfg_path = template / "tokenizer_config.json"
    chat_file = template / "chat_template.jinja"
    if chat_file.is_file():
        chat_file.write_text(chat_file.read_text() + " ")
    else:
        cfg = json.loads(cfg_path.read_text())
        cfg["chat_template"] = cfg["chat_template"] + " "
        cfg_path.write_text(json.dumps(cfg))
    keys["chat template"] = _key(model_fingerprint(template))

    keys["benchmark"] = _key(base_fp, benchmark="other")
    keys["prompt text"] = _key(base_fp, prompts=PROMPTS[:-1] + ["plain prompt!"])
    keys["prompt order"] = _key(base_fp, prompts=list(reversed(PROMPTS)))
    keys["backend"] = _key(base_fp, backend="vllm")
    changes = {"max_new_tokens": 5, "min_new_tokens": 1, "temperature": 0.7, "top_p": 0.9, "do_sample": True, "seed": 1, "batch_size": 3,
               "stop": ("###",)}
    for field, value in changes.items():
        keys[f"config.{field}"] = _key(base_fp, config=replace(CONFIG, **{field: value}))
    assert len(set(keys.values())) == len(keys), keys


def test_bad_prompts_are_input_errors(tiny_model_dir):
    from selbench.errors import InputError

    with pytest.raises(InputError, match="field 'messages'"):
        cached_generate(tiny_model_dir, "unit", [[{"role": "user"}]], CONFIG)
    with pytest.raises(InputError, match="no prompts"):
        cached_generate(tiny_model_dir, "unit", [], CONFIG)

"""GenerateStep: the key is known before generating, from file fingerprints alone (no model loaded); the run
stores under it; the step pickles without a loaded model; a model still to be trained is not ready."""

from __future__ import annotations

import pickle

import pytest

from selbench.errors import InputError
from selbench.generation.base import GenerationConfig
from selbench.generation.cached import GenerateStep, cached_generate, read_outputs
from selbench.step import InputsNotReady
from selbench.store import StepStore

PROMPTS = [[{"role": "user", "content": f"question {i}"}] for i in range(3)]
CONFIG = GenerationConfig.greedy(max_new_tokens=3, batch_size=2)


def test_key_before_generating_is_the_stored_key_and_loads_no_model(tiny_model_dir, tiny_model,
                                                                     forbid_model_loading, isolated_cache):
    step = GenerateStep.make(tiny_model_dir, "unit", PROMPTS, CONFIG, loaded=tiny_model)
    key = step.key()  # model loading is forbidden here
    assert step.lookup() is None
    clone = pickle.loads(pickle.dumps(step))
    assert clone.loaded is None and step.loaded is not None  # the loaded model stays home
    assert clone == step and clone.key() == key
    forbid_model_loading.undo()
    result = clone.run(StepStore())
    assert result.path.is_relative_to(isolated_cache)  # the test's own store
    assert result.key == key and not result.cached
    assert len(read_outputs(result.path)) == len(PROMPTS)
    assert cached_generate(tiny_model_dir, "unit", PROMPTS, CONFIG).key == key


def test_a_model_not_trained_yet_is_not_ready(tmp_path):
    step = GenerateStep.make(tmp_path / "train" / "longest", "unit", PROMPTS, CONFIG)
    with pytest.raises(InputsNotReady):
        step.key()
    assert step.lookup() is None
    # Run by hand, the same missing model is bad input (exit 2 naming the field), as before steps existed.
    with pytest.raises(InputError) as err:
        cached_generate(tmp_path / "train" / "longest", "unit", PROMPTS, CONFIG)
    assert err.value.field == "model" and "unknown model" in err.value.message
    assert GenerateStep.make("x", "unit", PROMPTS, CONFIG, backend="vllm").resources["gpus"] == 1
    assert GenerateStep.make("x", "unit", PROMPTS, CONFIG).resources["gpus"] == 0

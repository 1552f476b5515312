"""TrainStep: the key is known before training, from the tokenizer and file fingerprints alone (no weights
loaded); the run stores under that key; the step pickles without its tokenizer, examples or callbacks."""

from __future__ import annotations

import json
import pickle

import pytest

from selbench.data.schema import Example, dataset_sha256, read_examples, write_examples
from selbench.step import InputsNotReady
from selbench.store import StepStore
from selbench.training.presets import from_preset
from selbench.training.train import TrainStep, train


def _data(root):
    examples = [Example(instruction=f"Colour {i}?", output=f"colour number {i}") for i in range(6)]
    write_examples(examples, root / "data" / "data.parquet")
    return root / "data"


def _config(**overrides):
    return from_preset("demo", **{"effective_batch_size": 2, "per_device_batch_size": 2, "max_steps": 1,
                                  "max_length": 32, "warmup_ratio": 0.0, **overrides})


def test_key_before_training_is_the_stored_key_and_loads_no_weights(tiny_model_dir, tmp_path,
                                                                     forbid_model_loading, isolated_cache):
    data = _data(tmp_path)
    ids = [e.id for e in read_examples(data)][:4]
    selection = tmp_path / "sel.json"
    step = TrainStep(str(tiny_model_dir), str(data), str(selection), _config(), out=str(tmp_path / "out"))
    with pytest.raises(InputsNotReady):  # the selection is not made yet
        step.key()
    assert step.lookup() is None
    selection.write_text(json.dumps({"ids": ids, "dataset": {"sha256": dataset_sha256(data)}}))
    key = step.key()  # model loading is forbidden here: only the tokenizer and file hashes are read
    clone = pickle.loads(pickle.dumps(step))
    assert "_tokenizer" in step.__dict__ and "_tokenizer" not in clone.__dict__
    assert clone == step and clone.key() == key
    forbid_model_loading.undo()  # training itself loads the model
    result = clone.run(StepStore())
    assert result.path.is_relative_to(isolated_cache)  # the test's own store
    assert result.key == key and not result.cached
    assert (result.path / "train_config.json").is_file() and (tmp_path / "out" / "train_config.json").is_file()
    assert result.stats["n_examples"] == 4
    # train() finds the same entry
    assert train(str(tiny_model_dir), data, selection, _config(), None)["key"] == key


def test_step_pickles_without_callbacks_and_names_its_resources(tiny_model_dir, tmp_path):
    from transformers import TrainerCallback

    data = _data(tmp_path)
    step = TrainStep(str(tiny_model_dir), str(data), None, _config(), callbacks=(TrainerCallback(),))
    clone = pickle.loads(pickle.dumps(step))
    assert clone.callbacks == () and clone == step
    assert step.resources["gpus"] == 0
    assert TrainStep(str(tiny_model_dir), str(data), None, _config(precision="bf16")).resources["gpus"] == 1
    assert TrainStep(str(tiny_model_dir), str(data), None, _config(), precision="bf16").resources["gpus"] == 1
    assert "train" in step.describe()
    # An explicit precision is part of the key (a planner on a CPU can key a GPU run).
    assert (TrainStep(str(tiny_model_dir), str(data), None, _config(), precision="bf16").key()
            != TrainStep(str(tiny_model_dir), str(data), None, _config(), precision="fp32").key())


def test_an_unprepared_dataset_is_not_ready(tiny_model_dir, tmp_path):
    with pytest.raises(InputsNotReady):
        TrainStep(str(tiny_model_dir), str(tmp_path / "nothing"), None, _config()).key()

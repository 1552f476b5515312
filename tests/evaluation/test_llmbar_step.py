"""LLMBarStep: the key is known before judging (no model loaded), the run stores under it, the step pickles
without a loaded model; per-instance items average correctness over both orders."""

from __future__ import annotations

import json
import pickle

import pytest

from selbench.evaluation.base import read_items
from selbench.evaluation.llmbar import LLMBarConfig, LLMBarStep, cache_key, evaluate, load_llmbar
from selbench.generation.judge_model import loaded_model_fingerprint, model_identity
from selbench.step import InputsNotReady
from selbench.store import StepStore


def _data(root, labels=(1, 2, 1)):
    folder = root / "llmbar" / "Natural"
    folder.mkdir(parents=True)
    rows = [{"input": f"say {i}", "output_1": f"{i}", "output_2": f"not {i}", "label": y} for i, y in enumerate(labels)]
    (folder / "dataset.json").write_text(json.dumps(rows))
    return root / "llmbar"


def test_key_before_judging_is_the_stored_key_and_loads_no_model(tiny_model_dir, tmp_path,
                                                                  forbid_model_loading, isolated_cache):
    data = _data(tmp_path)
    step = LLMBarStep(str(tiny_model_dir), method="logprob", limit=2, data_dir=str(data))
    key = step.key()  # model loading is forbidden here
    hashes = load_llmbar("natural", data)[1]
    assert key == cache_key(LLMBarConfig(method="logprob", limit=2), model_identity(str(tiny_model_dir))[1], hashes)
    clone = pickle.loads(pickle.dumps(step))
    assert clone == step and clone.key() == key and step.lookup() is None
    forbid_model_loading.undo()
    result = clone.run(StepStore())
    assert result.path.is_relative_to(isolated_cache)  # the test's own store
    assert result.key == key and not result.cached
    items = read_items(result.path)
    records = [json.loads(line) for line in (result.path / "results.jsonl").read_text().splitlines()]
    assert [row["item"] for row in items] == ["Natural/0", "Natural/1"]
    for row, rec in zip(items, records, strict=True):
        assert row["score"] == ((rec["choice_original"] == rec["label"]) + (rec["choice_swapped"] == rec["label"])) / 2
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(sum(row["score"] for row in items) / 2) == result.stats["accuracy"]
    assert evaluate(str(tiny_model_dir), method="logprob", limit=2, data_dir=data)["cached"]


def test_a_loaded_judge_is_keyed_by_its_weights_and_never_pickled(tiny_model, tmp_path):
    data = _data(tmp_path)
    step = LLMBarStep("<in-memory>", method="logprob", limit=1, data_dir=str(data), loaded=tiny_model)
    assert step.inputs()["model"] == loaded_model_fingerprint(*tiny_model)
    assert pickle.loads(pickle.dumps(step)).loaded is None
    assert evaluate(tiny_model, method="logprob", limit=1, data_dir=data)["key"] == step.key()


def test_a_judge_not_trained_yet_is_not_ready(tmp_path):
    step = LLMBarStep(str(tmp_path / "train" / "longest"), data_dir=str(_data(tmp_path)))
    with pytest.raises(InputsNotReady):
        step.key()
    with pytest.raises(Exception, match="subset"):
        LLMBarStep("x", subset="nope")

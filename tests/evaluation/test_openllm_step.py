"""OpenLLMStep: the key is known before lm-eval runs (no model loaded), the run stores under it, the step
pickles without a loaded model or lm-eval objects; per-document items hold the headline metric."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from selbench.evaluation.base import read_items
from selbench.evaluation.openllm import SETTINGS, OpenLLMStep, cache_config, cache_inputs, evaluate
from selbench.generation.judge_model import model_identity
from selbench.step import InputsNotReady
from selbench.store import StepStore, step_key

FIXTURES = Path(__file__).parent / "fixtures_openllm"
TASK = "selbench_tiny_arc"


def test_key_before_running_is_the_stored_key_and_loads_no_model(tiny_model_dir, monkeypatch, forbid_model_loading,
                                                                isolated_cache):
    monkeypatch.chdir(FIXTURES)  # the task's data_files are relative paths
    step = OpenLLMStep(str(tiny_model_dir), TASK, "leaderboard", include_path=str(FIXTURES), batch_size=2)
    key = step.key()  # model loading is forbidden here
    assert key == step_key("eval:openllm", OpenLLMStep.VERSION, cache_config(TASK, SETTINGS["leaderboard"], None, 2),
                           cache_inputs(model_identity(str(tiny_model_dir))[1], FIXTURES))
    clone = pickle.loads(pickle.dumps(step))
    assert clone == step and clone.key() == key and step.lookup() is None
    forbid_model_loading.undo()
    result = clone.run(StepStore())
    assert result.path.is_relative_to(isolated_cache)  # the test's own store
    assert result.key == key and not result.cached
    items = read_items(result.path)
    assert [row["item"] for row in items] == [f"{TASK}/{i}" for i in range(4)]
    assert all(row["score"] in (0.0, 1.0) for row in items)
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["value"] == pytest.approx(sum(row["score"] for row in items) / 4) == result.stats["value"]
    assert metrics["metric"] == "acc" and "items" not in metrics
    again = evaluate(str(tiny_model_dir), TASK, setting="leaderboard", include_path=FIXTURES, batch_size=2)
    assert again["details"][TASK]["cached"] and again[TASK] == metrics["value"]


def test_a_loaded_model_is_never_pickled_and_a_model_to_train_is_not_ready(tiny_model, tmp_path):
    shared = {"lm": object()}
    step = OpenLLMStep("<in-memory>", TASK, loaded=tiny_model, shared=shared)
    clone = pickle.loads(pickle.dumps(step))
    assert clone.loaded is None and clone.shared is None and step.shared is shared
    with pytest.raises(InputsNotReady):
        OpenLLMStep(str(tmp_path / "train" / "longest"), TASK).key()
    with pytest.raises(Exception, match="setting"):
        OpenLLMStep("x", TASK, setting="v2")

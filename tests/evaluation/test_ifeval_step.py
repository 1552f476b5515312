"""IFEvalStep: the key is known before generating (no model loaded), the run stores under it, the step pickles;
per-prompt items carry prompt-level strict accuracy."""

from __future__ import annotations

import json
import pickle

import pytest

from selbench.evaluation.base import read_items
from selbench.evaluation.ifeval import IFEvalStep, evaluate
from selbench.evaluation.ifeval_data import load_prompts
from selbench.generation.base import GenerationConfig
from selbench.step import InputsNotReady
from selbench.store import StepStore

ROWS = [{"key": k, "prompt": f"Say hi {k}.", "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]}
        for k in (1, 2, 3)]


def _prompts(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_model_step_key_before_run_is_the_stored_key_and_loads_no_model(tiny_model_dir, tmp_path,
                                                                        forbid_model_loading, isolated_cache):
    config = GenerationConfig.greedy(max_new_tokens=3, batch_size=2)
    step = IFEvalStep(model=str(tiny_model_dir), prompts=str(_prompts(tmp_path)), limit=2, generation=config)
    key = step.key()  # model loading is forbidden here
    clone = pickle.loads(pickle.dumps(step))
    assert "_prompts" in step.__dict__ and "_prompts" not in clone.__dict__
    assert clone == step and clone.key() == key and step.lookup() is None
    forbid_model_loading.undo()
    result = clone.run(StepStore())
    assert result.path.is_relative_to(isolated_cache)  # the test's own store
    assert result.key == key and not result.cached
    items = read_items(result.path)
    assert [row["item"] for row in items] == ["1", "2"]
    assert all(row["score"] == float(all(row["strict"])) for row in items)
    metrics = json.loads((result.path / "metrics.json").read_text())
    assert metrics["prompt_strict"] == sum(row["score"] for row in items) / 2 and metrics["n"] == 2
    again = evaluate(model=str(tiny_model_dir), prompts=_prompts(tmp_path), limit=2, generation=config)
    assert again["generation_key"] == result.stats["generation_key"] and again["generation_cached"]
    assert again["prompt_strict"] == metrics["prompt_strict"]


def test_responses_step_items_and_readiness(tmp_path):
    prompts = _prompts(tmp_path)
    responses = tmp_path / "r.jsonl"
    step = IFEvalStep(responses=str(responses), prompts=str(prompts))
    with pytest.raises(InputsNotReady):
        step.key()
    responses.write_text("".join(json.dumps({"prompt": r["prompt"], "response": text}) + "\n"
                                 for r, text in zip(ROWS, ["hi, there", "hi there", "hello"], strict=True)))
    key = step.key()
    result = step.run()
    assert result.key == key
    assert [(row["item"], row["score"]) for row in read_items(result.path)] == [("1", 0.0), ("2", 1.0), ("3", 1.0)]
    # evaluate() reads the same stored step
    out = evaluate(responses=responses, prompts=prompts, out=tmp_path / "out")
    assert out["prompt_strict"] == pytest.approx(2 / 3)
    saved = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert [row["strict"] for row in saved["rows"]] == [[False], [True], [True]]
    responses.write_text(responses.read_text().replace("hello", "hello, you"))
    assert IFEvalStep(responses=str(responses), prompts=str(prompts)).key() != key


def test_packaged_prompt_set_keys_without_generation(tiny_model_dir):
    step = IFEvalStep(model=str(tiny_model_dir), limit=1)
    assert step.key() == IFEvalStep(model=str(tiny_model_dir), limit=1).key()
    assert step.key() != IFEvalStep(model=str(tiny_model_dir), limit=2).key()
    assert len(step.prompt_set()) == len(load_prompts())

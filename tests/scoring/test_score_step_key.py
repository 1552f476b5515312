"""ScoreStep: the key is known before scoring, with no model loaded; the run stores under it; the step pickles
without its built scorer; a dataset not prepared yet is not ready."""

from __future__ import annotations

import pickle

import pytest

from selbench.data.schema import Example, write_examples
from selbench.scoring.base import ScoreStep, compute_scores
from selbench.step import InputsNotReady
from selbench.store import StepStore


def test_key_before_scoring_is_the_stored_key(tmp_path, tiny_model_dir, forbid_model_loading):
    step = ScoreStep.make(tmp_path / "data", "length", {"unit": "tokens", "tokenizer": str(tiny_model_dir)})
    with pytest.raises(InputsNotReady):
        step.key()
    write_examples([Example(instruction=f"q{i}", output="word " * i) for i in range(1, 6)],
                   tmp_path / "data" / "data.parquet")
    key = step.key()  # a tokenizer is read, no model
    clone = pickle.loads(pickle.dumps(step))
    assert "_built" in step.__dict__ and "_built" not in clone.__dict__
    assert clone == step and clone.key() == key and step.lookup() is None
    result = clone.run(StepStore())
    assert result.key == key and not result.cached and result.stats["n"] == 5
    again = compute_scores(tmp_path / "data", "length", {"unit": "tokens", "tokenizer": str(tiny_model_dir)})
    assert again.cached and again.key == key

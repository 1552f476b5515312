"""The select step: key before running (no scoring needed for it), pickling, inputs not ready."""

from __future__ import annotations

import pickle

import pytest

from selbench.selection.manifest import SelectStep, run_selection
from selbench.step import InputsNotReady
from selbench.store import StepStore


def test_key_before_run_equals_the_run_key_and_needs_no_scores(make_pool, tmp_path):
    pool = make_pool(tmp_path / "pool", 50)
    step = SelectStep.make(pool, "longest", 10, seed=3)
    key = step.key()
    assert not (StepStore().root / "steps").exists()  # computing the key ran nothing, scored nothing
    assert pickle.loads(pickle.dumps(step)).key() == key
    run = run_selection(pool, "longest", 10, tmp_path / "l.json", seed=3)
    assert run.manifest["select_key"] == key and not run.cached


def test_every_input_changes_the_key(make_pool, tmp_path):
    pool = make_pool(tmp_path / "pool", 50)
    other = make_pool(tmp_path / "other", 50, seed=1)
    run_selection(pool, "longest", 10, tmp_path / "l.json")
    run_selection(pool, "longest", 20, tmp_path / "l20.json")
    base = SelectStep.make(pool, "random", 10, against=[tmp_path / "l.json"])
    variants = [
        SelectStep.make(other, "random", 10, against=[]),
        SelectStep.make(pool, "random", 11, against=[tmp_path / "l.json"]),
        SelectStep.make(pool, "random", 10, seed=1, against=[tmp_path / "l.json"]),
        SelectStep.make(pool, "random", 10, params={"max_overlap": 0.5}, against=[tmp_path / "l.json"]),
        SelectStep.make(pool, "random", 10, against=[tmp_path / "l20.json"]),
        SelectStep.make(pool, "strict-random", 10, params={"reference_budget": 10}, against=[tmp_path / "l.json"]),
    ]
    keys = {base.key(), *(v.key() for v in variants)}
    assert len(keys) == len(variants) + 1


def test_against_a_selection_not_made_yet_is_not_ready(make_pool, tmp_path):
    pool = make_pool(tmp_path / "pool", 50)
    step = SelectStep.make(pool, "random", 10, against=[tmp_path / "later.json"])
    with pytest.raises(InputsNotReady):
        step.key()
    assert step.lookup() is None

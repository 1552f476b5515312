"""PrepareStep and SubsampleStep: keys known before running, no model loaded for them, picklable; the
subsample is a seeded, valid prepared dataset."""

from __future__ import annotations

import json
import pickle

import pytest

from selbench.data.prepare import PrepareStep, prepare
from selbench.data.schema import dataset_sha256, read_examples, rows_sha256
from selbench.data.subsample import SubsampleStep, subsample_indices
from selbench.errors import InputError
from selbench.step import InputsNotReady
from selbench.store import StepStore

ROWS = [{"instruction": f"Question {i}?", "input": "", "output": "answer " * (1 + i % 4)} for i in range(20)]


def _jsonl(path, rows=ROWS):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_prepare_step_key_before_run_is_the_stored_key(tmp_path, forbid_model_loading):
    src = _jsonl(tmp_path / "in.jsonl")
    step = PrepareStep.make("alpaca", src, out=tmp_path / "out")
    key = step.key()
    assert step.lookup() is None
    clone = pickle.loads(pickle.dumps(step))
    assert clone == step and clone.key() == key and clone.out == step.out
    result = clone.run()
    assert result.key == key and not result.cached
    assert step.lookup().key == key
    # run() published a prepared dataset folder, and prepare() finds the same entry
    assert dataset_sha256(tmp_path / "out") == result.stats["sha256"] == rows_sha256(read_examples(tmp_path / "out"))
    again = prepare("alpaca", src, tmp_path / "out2")
    assert again["cached"] and again["step_key"] == key


def test_prepare_step_key_follows_the_input_bytes_and_options(tmp_path):
    src = _jsonl(tmp_path / "in.jsonl")
    base = PrepareStep.make("alpaca", src).key()
    assert PrepareStep.make("alpaca", src, skip_invalid=True).key() != base
    assert PrepareStep.make("jsonl", src, field_map={"task": "task"}).key() != base
    _jsonl(src, ROWS[:-1])
    assert PrepareStep.make("alpaca", src).key() != base  # a fresh step object hashes the file again
    with pytest.raises(InputError):
        PrepareStep.make("alpaca", tmp_path / "missing.jsonl").key()


def _prepared(tmp_path, rows=ROWS):
    prepare("alpaca", _jsonl(tmp_path / "in.jsonl", rows), tmp_path / "data")
    return tmp_path / "data"


def test_subsample_step_waits_for_its_dataset_then_keys_from_the_manifest(tmp_path, forbid_model_loading):
    step = SubsampleStep(str(tmp_path / "data"), limit=5, seed=1)
    with pytest.raises(InputsNotReady):
        step.key()
    assert step.lookup() is None
    data = _prepared(tmp_path)
    key = step.key()
    clone = pickle.loads(pickle.dumps(step))
    assert clone == step and clone.key() == key
    result = clone.run(StepStore())
    assert result.key == key and result.path == StepStore().path("subsample", key)
    # The store folder is a prepared dataset: manifest hash, Parquet hash and rows agree.
    kept = read_examples(result.path)
    manifest = json.loads((result.path / "manifest.json").read_text())
    assert len(kept) == manifest["n"] == 5 and manifest["subsample"]["of"] == dataset_sha256(data)
    assert dataset_sha256(result.path) == manifest["sha256"] == rows_sha256(kept)
    all_rows = read_examples(data)
    expected = subsample_indices(len(all_rows), 5, 1, dataset_sha256(data))
    assert [e.id for e in kept] == [all_rows[i].id for i in expected]  # dataset order kept
    assert manifest["tokens"]["output"]["count"] == 5


def test_subsample_is_seeded_by_seed_and_dataset(tmp_path):
    data = _prepared(tmp_path)
    sha = dataset_sha256(data)
    draws = {seed: tuple(subsample_indices(20, 6, seed, sha).tolist()) for seed in range(5)}
    assert len(set(draws.values())) == 5  # seeds give different samples
    assert tuple(subsample_indices(20, 6, 0, "0" * 63 + "1").tolist()) != draws[0]  # another dataset too
    a = SubsampleStep(str(data), limit=6, seed=0).run()
    b = SubsampleStep(str(data), limit=6, seed=0, out=str(tmp_path / "pub")).run()
    assert b.cached and a.key == b.key
    assert dataset_sha256(tmp_path / "pub") == dataset_sha256(a.path)
    assert SubsampleStep(str(data), limit=6, seed=1).key() != a.key
    everything = SubsampleStep(str(data), limit=50).run()
    assert dataset_sha256(everything.path) == sha  # a limit above the size keeps every row, in order


def test_subsample_rejects_bad_limits(tmp_path):
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InputError):
            SubsampleStep(str(tmp_path), limit=bad)

"""The score step: key before running, pickling, shard resumption, several and 2-D columns, dtypes."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.scoring.base import SCORERS, SCORES_FILE, ScoreStep, compute_scores, read_scores
from selbench.step import InputsNotReady
from selbench.store import ShardProgress, StepStore

CALLS: list[list[str]] = []


@dataclass(frozen=True)
class VectorScorer:
    """A scorer with a scalar and a 2-D column; records the rows it was asked to score.

    Args:
        dim: embedding width.
        half: store the embedding as float16.
    """

    dim: int = 3
    half: bool = False

    name: ClassVar[str] = "vector-test"
    VERSION: ClassVar[int] = 1
    columns: ClassVar[tuple[str, ...]] = ("output",)
    shard_size: ClassVar[int] = 2

    @property
    def column_dtypes(self) -> dict[str, str]:
        return {"embedding": "float16"} if self.half else {}

    def fingerprint(self) -> dict:
        return {"dim": self.dim, "half": self.half}

    def score(self, rows, meter):
        CALLS.append(list(rows["output"]))
        lengths = np.array([len(o) for o in rows["output"]], dtype=np.float64)
        meter.add_tokens(int(lengths.sum()))
        embedding = np.stack([lengths + k / 3 for k in range(self.dim)], axis=1).astype(np.float32)
        return {"length": lengths, "embedding": embedding}


if "vector-test" not in SCORERS:
    SCORERS.register("vector-test", VectorScorer)

OUTPUTS = ["a", "bb", "ccc", "dddd", "eeeee"]


def _pool(folder: Path) -> Path:
    examples = [Example(instruction=f"q{i}", output=o) for i, o in enumerate(OUTPUTS)]
    folder.mkdir(parents=True, exist_ok=True)
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": len(examples)}))
    return folder


def test_key_before_run_equals_the_key_written_and_the_step_pickles(tmp_path):
    step = ScoreStep.make(_pool(tmp_path / "pool"), "vector-test", {"dim": 4})
    key = step.key()
    clone = pickle.loads(pickle.dumps(step))
    assert "_built" not in clone.__dict__  # names and options travel, never a built scorer (or model)
    assert clone.key() == key
    assert step.lookup(StepStore()) is None
    result = step.run(StepStore())
    assert result.key == key and not result.cached
    assert step.run(StepStore()).cached


def test_key_of_an_unprepared_dataset_is_not_ready(tmp_path):
    with pytest.raises(InputsNotReady):
        ScoreStep.make(tmp_path / "missing", "vector-test").key()


def test_several_columns_and_2d_columns_round_trip_with_their_dtype(tmp_path):
    pool = _pool(tmp_path / "pool")
    result = compute_scores(pool, "vector-test", {"dim": 3, "half": True})
    table = pq.read_table(result.path)
    embedding_type = table.schema.field("embedding").type
    assert pa.types.is_fixed_size_list(embedding_type) and embedding_type.list_size == 3
    assert pa.types.is_float16(embedding_type.value_type)
    ids, columns = read_scores(result.path)
    assert len(ids) == len(OUTPUTS)
    assert columns["length"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert columns["embedding"].shape == (5, 3) and columns["embedding"].dtype == np.float16
    assert isinstance(columns["embedding"], np.memmap)  # read back memory-mapped from the store
    np.testing.assert_allclose(columns["embedding"][:, 1], np.arange(1, 6) + 1 / 3, rtol=1e-3)
    # The same file read without its .npy companion (e.g. `selbench score --out` copies) gives the same values.
    copy = tmp_path / "copy.parquet"
    copy.write_bytes(result.path.read_bytes())
    np.testing.assert_array_equal(read_scores(copy)[1]["embedding"], columns["embedding"])
    assert result.cost["tokens"] == sum(map(len, OUTPUTS))


def test_finished_shards_are_not_scored_again(tmp_path):
    pool = _pool(tmp_path / "pool")
    step = ScoreStep.make(pool, "vector-test", {"dim": 2})
    store = StepStore()
    # An earlier run finished shards 0 and 2 (of 3) before it was killed: only shard 1 is left.
    shards = ShardProgress(store.partial_dir("score", step.key()), len(OUTPUTS), VectorScorer.shard_size)
    done = {0: ["a", "bb"], 2: ["eeeee"]}
    for number, outputs in done.items():
        lengths = np.array([len(o) for o in outputs], dtype=np.float64)
        shards.save(number, {"length": lengths, "embedding": np.stack([lengths, lengths + 1 / 3], 1),
                             "__cost__": np.array([1.5, lengths.sum(), 0, 0, 0])})
    CALLS.clear()
    result = step.run(store)
    assert CALLS == [["ccc", "dddd"]]
    ids, columns = read_scores(result.path / SCORES_FILE)
    assert columns["length"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert result.stats["shards"] == {"shards": 3, "resumed": 2, "computed": 1}
    assert result.cost["wall_seconds"] >= 3.0  # the earlier run's shard seconds are charged once
    assert not (store.root / "partial" / "score" / step.key()).exists()


def test_a_changed_shard_layout_starts_over(tmp_path):
    folder = tmp_path / "partial"
    first = ShardProgress(folder, 5, 2)
    first.save(0, {"x": np.arange(2)})
    assert ShardProgress(folder, 5, 2).done(0)
    assert not ShardProgress(folder, 5, 3).done(0)

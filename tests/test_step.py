"""The sharding protocol of long steps (`selbench.step.ShardedStep`): `shard_plan` loads no model and names the
shards still to compute; `run_shards` computes just the shards it is given, in any grouping, and `run()` then
only assembles an output identical to a single-process run's."""

from __future__ import annotations

import json

import pytest

from selbench.data.schema import Example, write_examples
from selbench.evaluation.llmbar import SHARD_SIZE as LLMBAR_SHARD_SIZE
from selbench.evaluation.llmbar import LLMBarStep
from selbench.generation.base import GenerationConfig
from selbench.generation.cached import GenerateStep
from selbench.scoring.base import SCORES_FILE, ScoreStep, read_scores
from selbench.step import is_sharded
from selbench.store import StepStore


def _pool(folder, n):
    write_examples([Example(instruction=f"question {i}", input="" if i % 3 else f"context {i}",
                            output="answer " * (1 + i % 7) + str(i)) for i in range(n)], folder / "data.parquet")
    return folder


def test_score_step_shards_computed_apart_assemble_the_single_process_scores(tmp_path, tiny_model_dir,
                                                                              forbid_model_loading):
    data = _pool(tmp_path / "pool", 10)
    step = ScoreStep.make(data, "ifd", {"model": str(tiny_model_dir)}, shard_size=3)
    store = StepStore(tmp_path / "shared-store")
    assert is_sharded(step)
    assert step.shard_plan(store) == [0, 1, 2, 3]  # model loading is forbidden here
    partial = store.root / "partial" / "score" / step.key()
    assert json.loads((partial / "layout.json").read_text()) == {"n_items": 10, "shard_size": 3, "fmt": "npz"}
    forbid_model_loading.undo()

    # Two "workers" (fresh step objects, as Ray unpickles them) take shards out of order; the second finds
    # the first's layout and shards and leaves them alone.
    assert ScoreStep.make(data, "ifd", {"model": str(tiny_model_dir)}, shard_size=3).run_shards(store, [1, 3]) == \
        {"shards": 4, "resumed": 0, "computed": 2}
    assert step.shard_plan(store) == [0, 2]
    assert ScoreStep.make(data, "ifd", {"model": str(tiny_model_dir)}, shard_size=3).run_shards(store, [0, 1, 2]) == \
        {"shards": 4, "resumed": 1, "computed": 2}
    assert step.shard_plan(store) == []
    result = step.run(store)  # only assembles
    assert result.stats["shards"] == {"shards": 4, "resumed": 4, "computed": 0}
    assert result.cost["wall_seconds"] > 0 and result.cost["tokens"] > 0  # the shards' own time and tokens
    assert not partial.exists() and step.shard_plan(store) == [] and not partial.exists()

    alone = ScoreStep.make(data, "ifd", {"model": str(tiny_model_dir)}, shard_size=3).run(StepStore(tmp_path / "alone"))
    assert alone.key == result.key and alone.stats["shards"]["computed"] == 4
    assert (alone.path / SCORES_FILE).read_bytes() == (result.path / SCORES_FILE).read_bytes()
    ids, columns = read_scores(result.path / SCORES_FILE)
    assert len(ids) == 10 and set(columns) >= {"ifd"}
    with pytest.raises(ValueError, match="outside"):
        step.shard_progress(store).run(lambda number, items: {}, numbers=[4])


def test_generate_step_shards_computed_apart_assemble_the_single_process_outputs(tmp_path, tiny_model_dir,
                                                                                  forbid_model_loading):
    prompts = [[{"role": "user", "content": f"question {i} " + "word " * i}] for i in range(5)]
    config = GenerationConfig.greedy(max_new_tokens=3, batch_size=2)
    step = GenerateStep.make(tiny_model_dir, "unit", prompts, config, shard_size=2)
    store = StepStore(tmp_path / "shared-store")
    assert step.shard_plan(store) == [0, 1, 2]  # model loading is forbidden here
    forbid_model_loading.undo()
    GenerateStep.make(tiny_model_dir, "unit", prompts, config, shard_size=2).run_shards(store, [2])
    GenerateStep.make(tiny_model_dir, "unit", prompts, config, shard_size=2).run_shards(store, [0, 1])
    result = step.run(store)
    assert result.stats["resumed_shards"] == 3
    alone = GenerateStep.make(tiny_model_dir, "unit", prompts, config, shard_size=2).run(StepStore(tmp_path / "alone"))
    assert alone.key == result.key
    assert (alone.path / "outputs.jsonl").read_bytes() == (result.path / "outputs.jsonl").read_bytes()


def test_llmbar_step_shards_computed_apart_assemble_the_single_process_results(tmp_path, tiny_model_dir,
                                                                                forbid_model_loading):
    n = LLMBAR_SHARD_SIZE + 5
    folder = tmp_path / "llmbar" / "Natural"
    folder.mkdir(parents=True)
    rows = [{"input": f"say {i}", "output_1": f"{i}", "output_2": f"not {i}", "label": 1 + i % 2} for i in range(n)]
    (folder / "dataset.json").write_text(json.dumps(rows))

    def make():
        return LLMBarStep(str(tiny_model_dir), method="logprob", data_dir=str(tmp_path / "llmbar"))

    store = StepStore(tmp_path / "shared-store")
    assert make().shard_plan(store) == [0, 1]  # model loading is forbidden here
    forbid_model_loading.undo()
    make().run_shards(store, [1])
    assert make().shard_plan(store) == [0]
    make().run_shards(store, [0])
    result = make().run(store)
    alone = make().run(StepStore(tmp_path / "alone"))
    assert alone.key == result.key
    for name in ("results.jsonl", "metrics.json", "items.jsonl"):
        assert (alone.path / name).read_bytes() == (result.path / name).read_bytes(), name

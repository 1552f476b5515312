"""The Ray executor spreads long sharded steps over several Ray tasks on a local cluster: scoring and generation
come out identical to a single-process run, a re-run is all cached, and a failing shard task fails only its own
step, with its error (retried; bad input is not)."""

from __future__ import annotations

import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from selbench.data.schema import Example, write_examples
from selbench.errors import InputError
from selbench.generation.base import GenerationConfig
from selbench.generation.cached import GenerateStep
from selbench.runner.plan import Node, Plan
from selbench.runner.ray_executor import RayExecutor, split_groups, worker_slots
from selbench.scoring.base import SCORES_FILE, ScoreStep
from selbench.step import ShardedStep
from selbench.store import ShardProgress, StepStore

pytest.importorskip("ray")


def _plan(tmp_path: Path, steps: dict[str, Any], deps: dict[str, tuple[str, ...]] | None = None) -> Plan:
    nodes = {label: Node(label, step.name, step, (deps or {}).get(label, ()), dict(step.resources))
             for label, step in steps.items()}
    return Plan(grid=None, run_dir=tmp_path, nodes=nodes, cells=[])  # type: ignore[arg-type]


def test_long_steps_run_as_several_ray_tasks_and_equal_a_local_run(tmp_path, tiny_model_dir, caplog):
    write_examples([Example(instruction=f"question {i}", output="answer " * (1 + i % 9) + str(i)) for i in range(40)],
                   tmp_path / "pool" / "data.parquet")
    prompts = [[{"role": "user", "content": f"question {i} " + "word " * i}] for i in range(8)]

    def steps() -> dict[str, Any]:  # fresh objects for every run
        return {"score": ScoreStep.make(tmp_path / "pool", "ifd", {"model": str(tiny_model_dir)}, shard_size=5),
                "generate": GenerateStep.make(tiny_model_dir, "unit", prompts,
                                              GenerationConfig.greedy(max_new_tokens=3, batch_size=2), shard_size=2)}

    store = StepStore(tmp_path / "cache")
    caplog.set_level(logging.INFO, logger="selbench.runner.ray_executor")
    outcomes = RayExecutor(num_cpus=2, shard_tasks=3, log_file=str(tmp_path / "run.log")).execute(
        _plan(tmp_path, steps()), store)
    assert all(o.ok and not o.cached for o in outcomes.values()), outcomes
    assert outcomes["score"].shard_tasks == 3 and outcomes["generate"].shard_tasks == 3  # 8 and 4 shards
    assert "score: 8 shards left, spread over 3 Ray tasks" in caplog.text and "generate: 4 shards left" in caplog.text
    log = (tmp_path / "run.log").read_text()
    assert log.count("score: shards ") == 3, "each shard task logs its group into the run's log"
    assert outcomes["score"].result.stats["shards"] == {"shards": 8, "resumed": 8, "computed": 0}
    assert outcomes["generate"].result.stats["resumed_shards"] == 4

    local = StepStore(tmp_path / "local-cache")
    for label, step in steps().items():
        alone = step.run(local)
        assert alone.key == outcomes[label].result.key
        name = SCORES_FILE if label == "score" else "outputs.jsonl"
        assert (alone.path / name).read_bytes() == (outcomes[label].result.path / name).read_bytes(), label

    again = RayExecutor(num_cpus=2, shard_tasks=3).execute(_plan(tmp_path, steps()), store)
    assert all(o.ok and o.cached and o.shard_tasks == 0 for o in again.values()), again


@dataclass(frozen=True)
class ShardProbe(ShardedStep):
    """A sharded test step: squares of 0..n-1, `size` per shard; logs each shard try; `fail` ("error" or
    "input") at shard `at`."""

    label: str
    log: str
    n: int = 10
    size: int = 2
    fail: str = ""
    at: int = -1

    name: ClassVar[str] = "shardprobe"
    VERSION: ClassVar[int] = 1

    def config(self) -> dict[str, Any]:
        return {"label": self.label, "n": self.n, "size": self.size, "fail": self.fail, "at": self.at}

    def inputs(self) -> dict[str, Any]:
        return {}

    def shard_progress(self, store: StepStore) -> ShardProgress:
        return ShardProgress(store.partial_dir(self.name, self.key()), self.n, self.size, fmt="json")

    def shard_computer(self, store: StepStore, shards: ShardProgress):
        def square(number: int, items: range) -> list[int]:
            with open(self.log, "a") as fh:
                fh.write(json.dumps([self.label, number, os.getpid()]) + "\n")
            if number == self.at and self.fail == "error":
                raise RuntimeError(f"{self.label} shard {number} broke")
            if number == self.at and self.fail == "input":
                raise InputError("bad value", field=self.label)
            return [i * i for i in items]

        return square

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        shards = self.shard_progress(store)
        counts = shards.run(self.shard_computer(store, shards))
        values = [v for number in range(shards.n_shards) for v in shards.load(number)]
        (tmp / "out.json").write_text(json.dumps(values))
        return counts


def test_a_failing_shard_task_fails_its_step_with_its_error_and_the_rest_goes_on(tmp_path):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    log = str(tmp_path / "shards.log")
    steps = {"ok": ShardProbe("ok", log), "broken": ShardProbe("broken", log, fail="error", at=3),
             "bad": ShardProbe("bad", log, fail="input", at=0), "after": ShardProbe("after", log, n=2)}
    store = StepStore(tmp_path / "cache")
    outcomes = RayExecutor(num_cpus=2, max_retries=1).execute(_plan(tmp_path, steps, {"after": ("broken",)}), store)
    assert outcomes["ok"].ok and outcomes["ok"].shard_tasks == 2  # 5 shards, 2 slots of 1 CPU
    assert json.loads((outcomes["ok"].result.path / "out.json").read_text()) == [i * i for i in range(10)]
    assert not outcomes["broken"].ok and outcomes["broken"].shard_tasks == 2 and outcomes["broken"].attempts == 2
    assert "RuntimeError: broken shard 3 broke" in outcomes["broken"].error
    assert "field 'bad': bad value" in outcomes["bad"].error and outcomes["bad"].attempts == 1
    assert outcomes["after"].error == "upstream failed: broken"
    tries = [tuple(json.loads(line)[:2]) for line in Path(log).read_text().splitlines()]
    assert sorted(t for t in tries if t[0] == "ok") == [("ok", i) for i in range(5)], "each shard computed once"
    assert tries.count(("broken", 3)) == 2 and tries.count(("bad", 0)) == 1, "errors are retried, bad input is not"
    # The broken step's other group finished and its shards stay saved for the next run.
    assert ShardProbe("broken", log, fail="error", at=3).shard_plan(store) == [3, 4]


def test_shard_groups_and_slots():
    assert split_groups(list(range(8)), 3) == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert split_groups([4, 7], 5) == [[4], [7]]
    assert worker_slots({"cpus": 1, "gpus": 0, "memory_gb": 4}, [{"CPU": 2.0, "memory": 3 * 2**30}]) == 1
    assert worker_slots({"cpus": 2, "gpus": 0, "memory_gb": 0}, [{"CPU": 8.0}, {"CPU": 4.0}]) == 6
    assert worker_slots({"cpus": 1, "gpus": 1, "memory_gb": 0}, [{"CPU": 8.0}]) == 1  # none fits: still one

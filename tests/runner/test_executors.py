"""Executors on plans of small test steps: dependency order, resources, retries, failures that stop only
their own branch; the same plan on a local Ray cluster."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from selbench.errors import InputError
from selbench.runner.executors import LocalExecutor, RayExecutor, fit_request
from selbench.runner.plan import Node, Plan
from selbench.step import Step
from selbench.store import StepStore

_BARRIERS: dict[str, threading.Barrier] = {}


@dataclass(frozen=True)
class Probe(Step):
    """A test step: records each attempt in `log`, optionally waits at a barrier, fails or raises bad input."""

    label: str
    log: str
    fail: str = ""  # "", "error" or "input"
    barrier: str = ""

    name: ClassVar[str] = "probe"
    VERSION: ClassVar[int] = 1

    def config(self) -> dict[str, Any]:
        return {"label": self.label, "fail": self.fail}

    def inputs(self) -> dict[str, Any]:
        return {}

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        with open(self.log, "a") as fh:
            fh.write(self.label + "\n")
        if self.barrier:
            _BARRIERS[self.barrier].wait(timeout=60)  # both steps must be running at once to pass
        if self.fail == "error":
            raise RuntimeError(f"{self.label} broke")
        if self.fail == "input":
            raise InputError("bad value", field=self.label)
        (tmp / "out.txt").write_text(self.label)
        return {"label": self.label}


@dataclass(frozen=True)
class ModelProbe(Probe):
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 1, "memory_gb": 1}


def make_plan(tmp_path: Path, specs: list[tuple[str, tuple[str, ...], dict[str, Any]]]) -> Plan:
    log = str(tmp_path / "attempts.log")
    nodes = {}
    for label, deps, options in specs:
        cls = ModelProbe if options.pop("model", False) else Probe
        step = cls(label, log, **options)
        nodes[label] = Node(label, "probe", step, deps, dict(step.resources))
    return Plan(grid=None, run_dir=tmp_path, nodes=nodes, cells=[])  # type: ignore[arg-type]


def attempts(tmp_path: Path) -> list[str]:
    path = tmp_path / "attempts.log"
    return path.read_text().split() if path.exists() else []


DIAMOND = [
    ("a", (), {}),
    ("b", ("a",), {}),
    ("c", ("a",), {"fail": "error"}),
    ("d", ("b", "c"), {}),
    ("e", ("a",), {"fail": "input"}),
    ("f", ("b",), {}),
]


def check_diamond(tmp_path: Path, outcomes: dict, store: StepStore) -> None:
    assert {n for n, o in outcomes.items() if o.ok} == {"a", "b", "f"}
    assert "RuntimeError: c broke" in outcomes["c"].error and outcomes["c"].attempts == 2
    assert outcomes["d"].error == "upstream failed: c" and outcomes["d"].attempts == 0
    assert "field 'e': bad value" in outcomes["e"].error
    runs = attempts(tmp_path)
    assert runs.count("c") == 2 and runs.count("e") == 1, "errors are retried, bad input is not"
    assert "d" not in runs
    metas = {label: store.lookup("probe", outcomes[label].result.key).meta for label in ("a", "b", "f")}
    assert metas["a"]["finished"] <= metas["b"]["created"] <= metas["b"]["finished"] <= metas["f"]["created"]


def test_local_executor_order_retries_and_failures(tmp_path):
    store = StepStore(tmp_path / "cache")
    started, done = [], []
    executor = LocalExecutor(workers=2, max_retries=1)
    outcomes = executor.execute(make_plan(tmp_path, list(DIAMOND)), store, on_start=lambda n: started.append(n.id),
                                on_done=lambda o: done.append(o.node))
    check_diamond(tmp_path, outcomes, store)
    assert sorted(done) == sorted(label for label, _, _ in DIAMOND) and "d" not in started
    # Again: every finished step is found in the store, the failed ones are tried again.
    again = LocalExecutor(workers=2, max_retries=0).execute(make_plan(tmp_path, list(DIAMOND)), store)
    assert all(again[n].cached for n in ("a", "b", "f")) and not again["c"].ok
    assert attempts(tmp_path).count("a") == 1


def test_local_executor_runs_light_steps_together_and_model_steps_alone(tmp_path):
    _BARRIERS["pair"] = threading.Barrier(2)
    specs = [("x", (), {"barrier": "pair"}), ("y", (), {"barrier": "pair"}),
             ("m1", (), {"model": True}), ("m2", (), {"model": True})]
    store = StepStore(tmp_path / "cache")
    running: set[str] = set()
    overlaps: list[set[str]] = []

    def start(node):
        running.add(node.id)
        overlaps.append(set(running))

    def finish(outcome):
        running.discard(outcome.node)

    executor = LocalExecutor(workers=4, capacity={"cpus": 2, "gpus": 0, "memory_gb": 8})
    outcomes = executor.execute(make_plan(tmp_path, specs), store, on_start=start, on_done=finish)
    assert all(o.ok for o in outcomes.values()), outcomes
    # x and y met at their barrier, so they ran at once; a model step on a machine without GPUs holds every CPU.
    assert not any({"m1", "m2"} <= s or (("m1" in s or "m2" in s) and len(s) > 1) for s in overlaps), overlaps


def test_fit_request():
    box = {"cpus": 16, "gpus": 2, "memory_gb": 64}
    assert fit_request({"cpus": 2, "gpus": 1, "memory_gb": 16}, box) == {"cpus": 2.0, "gpus": 1.0, "memory_gb": 16.0}
    assert fit_request({"cpus": 32, "gpus": 4, "memory_gb": 128}, box) == {"cpus": 16.0, "gpus": 2.0, "memory_gb": 64.0}


def test_ray_executor_on_a_local_cluster(tmp_path):
    pytest.importorskip("ray")
    import ray.cloudpickle

    _BARRIERS.clear()  # module globals travel with the steps, and locks do not pickle
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    store = StepStore(tmp_path / "cache")
    executor = RayExecutor(max_retries=1, num_cpus=2, log_file=str(tmp_path / "run.log"))
    outcomes = executor.execute(make_plan(tmp_path, list(DIAMOND)), store)
    check_diamond(tmp_path, outcomes, store)
    assert "bad value" in (tmp_path / "run.log").read_text(), "workers log into the run's log file"


@dataclass(frozen=True)
class DeviceProbe(ModelProbe):
    """Records the process and the GPUs it was given."""

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        import os

        return {"pid": os.getpid(), "devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def test_isolated_model_steps_get_their_own_process_and_gpus(tmp_path):
    import os

    log = str(tmp_path / "attempts.log")
    nodes = {label: Node(label, "probe", DeviceProbe(label, log), (), dict(DeviceProbe.resources))
             for label in ("g1", "g2")}
    plan = Plan(grid=None, run_dir=tmp_path, nodes=nodes, cells=[])  # type: ignore[arg-type]
    executor = LocalExecutor(workers=2, isolate=True, capacity={"cpus": 4, "gpus": 2, "memory_gb": 8})
    outcomes = executor.execute(plan, StepStore(tmp_path / "cache"))
    stats = [outcomes[label].result.stats for label in ("g1", "g2")]
    assert all(s["pid"] != os.getpid() for s in stats) and stats[0]["pid"] != stats[1]["pid"]
    assert sorted(s["devices"] for s in stats) == ["0", "1"], "each step pinned to its own GPU"

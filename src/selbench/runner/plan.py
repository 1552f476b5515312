"""A grid expanded into a plan: a DAG of steps, each shared step once, and the cells they serve.

    prepare ─► [subsample] ─► score ─► select ─► train ─► evaluate (per benchmark)
                                         └► random seeds (against every strategy of that dataset and budget)
                                         └► strict-random (outside every strategy's selection at the largest budget)
    base model ─► evaluate (once for the whole study)

A **cell** is one (dataset, budget, selection, training preset): one fine-tuned model and its evaluations
(DESIGN.md "The study"); a selection is a strategy, a random seed or a strict-random seed. Sharing: a dataset
is prepared (and subsampled) once; a scorer runs once per (dataset, scorer options), whatever the budgets and
strategies that read it; a selection is made once per (dataset, budget) and trained once per preset; the base
model is evaluated once. `full` is a strategy like any other, planned once per dataset (its budget is the
pool) and left out of the random baselines' `against` sets (an overlap bound against the whole pool cannot
hold).

Steps are built here and nowhere else, so switching a stage to its own step class is a change in this module.
Steps hold no reference to each other: each reads its inputs from the run folder, where the step before it
publishes them (`data/`, `selections/`, `models/`); the plan holds the edges.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selbench.assets.spec import is_local_model
from selbench.data.prepare import PrepareStep
from selbench.data.subsample import SubsampleStep
from selbench.hashing import sha256_json
from selbench.runner.grid import Grid
from selbench.runner.head_to_head import HeadToHeadStep
from selbench.runner.steps import (
    LinkedTrainStep,
    OpenLLMSuiteStep,
    PublishedSelectStep,
    RunIFEvalStep,
    RunLLMBarStep,
)
from selbench.selection.base import STRATEGIES
from selbench.step import InputsNotReady, planning
from selbench.store import StepStore

log = logging.getLogger(__name__)

# Scorers that need no model; every other scorer asks the executor for a GPU (or the whole CPU box).
MODEL_FREE_SCORERS = frozenset({"length"})
MODEL_RESOURCES = {"cpus": 2, "gpus": 1, "memory_gb": 16}


@dataclass
class Node:
    """One step of the plan.

    Args:
        id: unique, readable id (`train/alpaca/b1000/longest/set1`).
        kind: prepare, subsample, score, select, train or eval.
        step: the step object (picklable; `key()`, `run(store)`).
        deps: ids of the nodes whose outputs it reads.
        resources: what one run holds (`cpus`, `gpus`, `memory_gb`).
        cells: ids of the cells it serves (empty for the base model's evaluations).
        benchmark: for evaluations, the benchmark name.
    """

    id: str
    kind: str
    step: Any
    deps: tuple[str, ...] = ()
    resources: dict[str, float] = field(default_factory=dict)
    cells: list[str] = field(default_factory=list)
    benchmark: str | None = None


@dataclass
class Cell:
    """One fine-tuned model of the study and its evaluations.

    Args:
        id: `dataset/b<budget>/<selection>/<preset>` (`dataset/full/<preset>` for the whole pool).
        dataset / budget / strategy / seed / preset / lora: what the results tables say about it; `budget` is
            None for `full` until the pool is prepared; `strategy` is `random` or `strict-random` for baselines.
        selection / train: node ids; evals: benchmark -> node id.
        selection_path / model_path: where the manifest and the model (a link) are published.
    """

    id: str
    dataset: str
    budget: int | None
    strategy: str
    seed: int | None
    preset: str
    lora: bool
    selection: str
    train: str
    evals: dict[str, str] = field(default_factory=dict)
    selection_path: str = ""
    model_path: str = ""

    @property
    def nodes(self) -> list[str]:
        return [self.selection, self.train, *self.evals.values()]


@dataclass
class Plan:
    """The DAG (`nodes`, in an order where every node comes after its deps), the cells and the base evaluations."""

    grid: Grid
    run_dir: Path
    nodes: dict[str, Node]
    cells: list[Cell]
    base_evals: dict[str, str] = field(default_factory=dict)
    data_nodes: dict[str, str] = field(default_factory=dict)

    def ancestors(self, node_id: str) -> set[str]:
        """Every node `node_id` depends on, transitively."""
        seen: set[str] = set()
        todo = list(self.nodes[node_id].deps)
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.nodes[current].deps)
        return seen

    def cell_nodes(self, cell: Cell) -> set[str]:
        """The cell's own nodes and everything they depend on."""
        out = set(cell.nodes)
        for node_id in cell.nodes:
            out |= self.ancestors(node_id)
        return out


def _selection_name(strategy: str, seed: int | None) -> str:
    return strategy if seed is None else f"{strategy}-s{seed}"


class _Builder:
    def __init__(self, grid: Grid, run_dir: Path) -> None:
        self.grid = grid
        self.run = run_dir
        self.nodes: dict[str, Node] = {}

    def add(self, node_id: str, kind: str, step: Any, deps: tuple[str, ...] = (), *,
            resources: dict[str, float] | None = None, benchmark: str | None = None) -> str:
        if node_id not in self.nodes:
            for dep in deps:
                assert dep in self.nodes, f"{node_id} depends on {dep}, which is not planned before it"
            self.nodes[node_id] = Node(node_id, kind, step, deps, dict(resources or step.resources),
                                       benchmark=benchmark)
        return node_id

    def data(self, name: str) -> tuple[str, str]:
        """(node id, folder) of the dataset the selections read: the prepared pool or its subsample."""
        spec = self.grid.datasets[name]
        folder = self.run / "data" / name
        prepared = self.run / "data" / "_pool" / name if spec.limit else folder
        options = {k: v for k, v in (("max_per_task", spec.max_per_task), ("max_chars", spec.max_chars)) if v}
        node = self.add(f"prepare/{name}", "prepare", PrepareStep.make(
            spec.source, spec.input, skip_invalid=spec.skip_invalid, field_map=spec.field_map, out=prepared,
            **options))
        if spec.limit:
            node = self.add(f"subsample/{name}", "subsample",
                            SubsampleStep(str(prepared), spec.limit, self.grid.seed, out=str(folder)), (node,))
        return node, str(folder)

    def select(self, dataset: str, budget: int | None, strategy: str, seed: int | None, params: dict[str, Any],
               against: list[tuple[str, str]], data: tuple[str, str]) -> tuple[str, str]:
        """(node id, manifest path) of one selection; `against` = (node id, manifest path) pairs."""
        where = "full" if budget is None else f"b{budget}"
        name = _selection_name(strategy, seed) if strategy in ("random", "strict-random") else strategy
        path = self.run / "selections" / dataset / where / f"{name}.json"
        step = PublishedSelectStep(data[1], strategy, budget, self.grid.seed if seed is None else seed,
                                   tuple(sorted(params.items())), tuple(p for _, p in against), out=str(path))
        deps = [data[0]]
        registered = strategy in STRATEGIES
        # A strategy with a `prepare` hook (Cherry) trains and scores with a model inside its select step.
        heavy = registered and hasattr(STRATEGIES.get(strategy), "prepare")
        for score in step.score_steps().values() if registered else ():  # unregistered (dry runs): no scorers known
            scorer = score.scorer
            score_id = f"score/{dataset}/{scorer}/{sha256_json(dict(score.options))[:8]}"
            options = dict(score.options)
            # AlpaGasus: requests to an endpoint need no model here, unless the judge is weights served here.
            api_judged = ("judge" in options and "model" not in options
                          and not is_local_model(options["judge"], options.get("judge_base_url")))
            resources = None if scorer in MODEL_FREE_SCORERS or api_judged else MODEL_RESOURCES
            deps.append(self.add(score_id, "score", score, (data[0],), resources=resources))
        deps.extend(node for node, _ in against)
        return self.add(f"select/{dataset}/{where}/{name}", "select", step, tuple(deps),
                        resources=MODEL_RESOURCES if heavy else None), str(path)


def build_plan(grid: Grid, run_dir: str | Path | None = None) -> Plan:
    """Expand `grid` into its plan (builds step objects; computes no key and reads no data).

    Args:
        grid: the validated grid.
        run_dir: the run folder (default: `grid.out`).
    """
    run = Path(run_dir if run_dir is not None else grid.out).resolve()
    b = _Builder(grid, run)
    cells: list[Cell] = []
    data_nodes: dict[str, str] = {}
    strategies = [s for s in grid.strategies if s != "full"]
    top = max(grid.budgets)
    for dataset in grid.datasets:
        data = b.data(dataset)
        data_nodes[dataset] = data[0]
        # Strategies first at every budget: the random baselines are defined against them.
        made: dict[tuple[int, str], tuple[str, str]] = {}
        for budget in grid.budgets:
            for strategy in strategies:
                made[(budget, strategy)] = b.select(dataset, budget, strategy, None, grid.strategy_params(strategy),
                                                    [], data)
        selections: list[tuple[int | None, str, int | None, tuple[str, str]]] = []
        if "full" in grid.strategies:
            selections.append((None, "full", None, b.select(dataset, None, "full", None,
                                                            grid.strategy_params("full"), [], data)))
        for budget in grid.budgets:
            selections.extend((budget, s, None, made[(budget, s)]) for s in strategies)
            against = [made[(budget, s)] for s in strategies]
            for seed in grid.random.seeds:
                selections.append((budget, "random", seed, b.select(
                    dataset, budget, "random", seed, {"max_overlap": grid.random.max_overlap}, against, data)))
            for seed in grid.random.strict_seeds:
                reference = [made[(top, s)] for s in strategies]
                selections.append((budget, "strict-random", seed, b.select(
                    dataset, budget, "strict-random", seed, {"reference_budget": top}, reference, data)))
        for budget, strategy, seed, (select_node, manifest) in selections:
            for preset in grid.train.presets:
                cells.append(_cell(b, dataset, budget, strategy, seed, preset, select_node, manifest, data))
    _add_evaluations(b, grid, cells, run)
    plan = Plan(grid, run, b.nodes, cells, data_nodes=data_nodes)
    plan.base_evals = {n.benchmark: n.id for n in b.nodes.values() if n.id.endswith("/base") and n.kind == "eval"}
    for cell in cells:
        for node_id in plan.cell_nodes(cell):
            plan.nodes[node_id].cells.append(cell.id)
    return plan


def _cell(b: _Builder, dataset: str, budget: int | None, strategy: str, seed: int | None, preset: str,
          select_node: str, manifest: str, data: tuple[str, str]) -> Cell:
    config = b.grid.train.config(preset)
    where = "full" if budget is None else f"b{budget}"
    name = _selection_name(strategy, seed)
    cell_id = f"{dataset}/{where}/{name}/{preset}"
    model = b.run / "models" / cell_id.replace("/", "-")
    train = b.add(f"train/{cell_id}", "train", LinkedTrainStep(b.grid.model, data[1], manifest, config, link=str(model)),
                  (select_node,), resources=MODEL_RESOURCES)
    return Cell(cell_id, dataset, budget, strategy, seed, preset, bool(config.lora), select_node, train,
                selection_path=manifest, model_path=str(model))


def _eval_step(grid: Grid, benchmark: str, model: str, randoms: tuple[Cell, ...] = ()) -> Any:
    spec = getattr(grid.benchmarks, benchmark)
    if benchmark == "ifeval":
        from selbench.generation.base import GenerationConfig

        generation = GenerationConfig.greedy(max_new_tokens=spec.max_new_tokens, batch_size=spec.batch_size)
        return RunIFEvalStep(model=model, prompts=spec.prompts, limit=spec.limit, generation=generation)
    if benchmark == "llmbar":
        return RunLLMBarStep(model, spec.subset, spec.strategy, spec.method, spec.limit, spec.batch_size, spec.data_dir)
    if benchmark == "openllm":
        return OpenLLMSuiteStep(model, tuple(spec.tasks), spec.setting, spec.limit, spec.batch_size)
    assert benchmark == "alpacaeval", f"no step for benchmark {benchmark}"
    judge = spec.judge
    return HeadToHeadStep(model, tuple(c.model_path for c in randoms), tuple(int(c.seed) for c in randoms), judge.model, judge.base_url, judge.api_key_env, judge.workers, spec.limit,
                          spec.max_new_tokens, spec.protocol, spec.annotator, spec.seed)


def _add_evaluations(b: _Builder, grid: Grid, cells: list[Cell], run: Path) -> None:
    """Each benchmark on every cell's model, and once on the base model (not the head-to-head: it compares
    a strategy's model with the random models of its own dataset, budget and preset)."""
    randoms: dict[tuple[str, int | None, str], list[Cell]] = {}
    for cell in cells:
        if cell.strategy == "random":
            randoms.setdefault((cell.dataset, cell.budget, cell.preset), []).append(cell)
    for benchmark in grid.benchmarks.names():
        if grid.evaluate_base and benchmark != "alpacaeval":
            b.add(f"eval/{benchmark}/base", "eval", _eval_step(grid, benchmark, grid.model),
                  resources=MODEL_RESOURCES, benchmark=benchmark)
        for cell in cells:
            deps: tuple[str, ...] = (cell.train,)
            others: tuple[Cell, ...] = ()
            if benchmark == "alpacaeval":
                opponents = randoms.get((cell.dataset, cell.budget, cell.preset), [])
                if cell.strategy == "random" or not opponents:
                    continue
                others = tuple(opponents)
                deps = (cell.train, *(c.train for c in opponents))
            cell.evals[benchmark] = b.add(f"eval/{benchmark}/{cell.id}", "eval",
                                          _eval_step(grid, benchmark, cell.model_path, others), deps,
                                          resources=MODEL_RESOURCES, benchmark=benchmark)


# ------------------------------------------------------------------------------------------- status
@dataclass
class NodeStatus:
    """key: the step key (None while an input is not on disk); cached: finished in the store and every node
    it depends on is too; why: why the key is unknown."""

    key: str | None
    cached: bool
    why: str | None = None


def node_status(plan: Plan, store: StepStore) -> dict[str, NodeStatus]:
    """What is cached, computed from keys and `meta.json` files only (no step runs, no model loads).

    A node counts as cached only when all the nodes it reads from are: a stale file left in the run folder
    by an older grid must not make its readers look done.
    """
    status: dict[str, NodeStatus] = {}
    for node in plan.nodes.values():
        try:
            with planning():  # no download to learn a key
                key = node.step.key()
        except InputsNotReady as exc:
            status[node.id] = NodeStatus(None, False, str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - a key that cannot be known here (offline hub...) is "to run"
            log.debug("%s: key unknown: %s", node.id, exc)
            status[node.id] = NodeStatus(None, False, f"{type(exc).__name__}: {exc}")
            continue
        found = store.lookup(node.step.name, key) is not None
        deps_cached = all(status[d].cached for d in node.deps)
        status[node.id] = NodeStatus(key, found and deps_cached)
    return status


def plan_json(plan: Plan, status: dict[str, NodeStatus] | None = None) -> dict[str, Any]:
    """`plan.json`: every step with its key (null while unknown), and the cells."""
    status = status or {}
    return {
        "run_dir": str(plan.run_dir),
        "steps": [{"id": n.id, "kind": n.kind, "step": n.step.name, "describe": n.step.describe(),
                   "key": status[n.id].key if n.id in status else None,
                   "cached": status[n.id].cached if n.id in status else None,
                   "deps": list(n.deps), "resources": n.resources, "cells": len(n.cells)}
                  for n in plan.nodes.values()],
        "cells": [{"id": c.id, "dataset": c.dataset, "budget": c.budget, "strategy": c.strategy, "seed": c.seed,
                   "preset": c.preset, "lora": c.lora, "selection": c.selection_path, "model": c.model_path,
                   "steps": c.nodes} for c in plan.cells],
        "base_evals": plan.base_evals,
    }

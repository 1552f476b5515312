"""A grid expanded into its DAG: cells, shared steps, the random baselines' `against` sets, the edges."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from selbench.runner.grid import grid_from_dict
from selbench.runner.plan import build_plan, node_status, plan_json
from selbench.store import StepStore


def make_grid(tmp_path: Path, **changes):
    raw = {
        "out": str(tmp_path / "run"),
        "model": "smollm2-135m-instruct",
        "datasets": {"a": {"source": "jsonl", "input": str(tmp_path / "a.jsonl")},
                     "b": {"source": "jsonl", "input": str(tmp_path / "b.jsonl"), "limit": 10}},
        "budgets": [8, 4],
        "strategies": {"longest": {}, "full": {}},
        "random": {"seeds": [0, 1], "strict": True},
        "train": {"presets": ["demo", "set1"]},
        "benchmarks": {"ifeval": {"limit": 2}, "alpacaeval": {"judge": {"model": "gpt-4-turbo"}, "limit": 2}},
        **changes,
    }
    return grid_from_dict(raw)


def test_cells_and_shared_steps(tmp_path):
    plan = build_plan(make_grid(tmp_path))
    kinds: dict[str, int] = {}
    for node in plan.nodes.values():
        kinds[node.kind] = kinds.get(node.kind, 0) + 1
    # Per dataset: full once + per budget (longest, 2 random seeds, 1 strict-random) = 9 selections, x 2 presets.
    assert len(plan.cells) == 2 * 9 * 2
    assert kinds["prepare"] == 2 and kinds["subsample"] == 1  # only `b` has a limit
    assert kinds["score"] == 2, "one length scoring per dataset serves every budget"
    assert kinds["select"] == 2 * 9 and kinds["train"] == len(plan.cells)
    # IFEval on every cell + once on the base model; the head-to-head for longest and strict-random cells at
    # each budget (full has no random models of its own budget).
    h2h = [n for n in plan.nodes.values() if n.benchmark == "alpacaeval"]
    ifeval = [n for n in plan.nodes.values() if n.benchmark == "ifeval"]
    assert len(ifeval) == len(plan.cells) + 1 and plan.base_evals == {"ifeval": "eval/ifeval/base"}
    assert len(h2h) == 2 * 2 * 2 * 2
    assert {c.strategy for c in plan.cells} == {"longest", "full", "random", "strict-random"}
    full = [c for c in plan.cells if c.strategy == "full"]
    assert len(full) == 4 and all(c.budget is None for c in full)
    assert plan.nodes["train/a/b8/longest/demo"].step.train_config.lora is False
    assert {c.lora for c in plan.cells if c.preset == "set1"} == {False}


def test_edges_and_baselines(tmp_path):
    plan = build_plan(make_grid(tmp_path))
    order = list(plan.nodes)
    for position, node in enumerate(plan.nodes.values()):
        assert all(order.index(d) < position for d in node.deps), f"{node.id} comes before one of its inputs"
    run = tmp_path / "run"
    random = plan.nodes["select/a/b4/random-s1"]
    assert random.step.against == (str(run / "selections/a/b4/longest.json"),), "against every strategy but full"
    assert dict(random.step.params) == {"max_overlap": 0.3} and random.step.seed == 1
    assert "select/a/b4/longest" in random.deps
    strict = plan.nodes["select/a/b4/strict-random-s0"]
    assert strict.step.against == (str(run / "selections/a/b8/longest.json"),), "the largest budget's selections"
    assert dict(strict.step.params) == {"reference_budget": 8} and "select/a/b8/longest" in strict.deps
    longest = plan.nodes["select/a/b8/longest"]
    assert [plan.nodes[d].kind for d in longest.deps] == ["prepare", "score"]
    assert plan.nodes["select/b/full/full"].step.budget is None
    # The subsampled dataset is what selections read.
    assert plan.nodes["select/b/b4/longest"].step.data == str(run / "data/b")
    assert plan.nodes["subsample/b"].step.data == str(run / "data/_pool/b")
    h2h = plan.nodes["eval/alpacaeval/a/b4/longest/demo"]
    assert set(h2h.deps) == {"train/a/b4/longest/demo", "train/a/b4/random-s0/demo", "train/a/b4/random-s1/demo"}
    assert h2h.step.random_seeds == (0, 1) and h2h.step.judge == "gpt-4-turbo"
    assert "eval/alpacaeval/a/b4/random-s0/demo" not in plan.nodes
    # Sharing: the pool's prepare step serves every cell of its dataset; the base evaluation serves none.
    assert len(plan.nodes["prepare/a"].cells) == 18 and plan.nodes["eval/ifeval/base"].cells == []
    assert len(plan.nodes[longest.deps[1]].cells) == 16, "scoring serves every cell but full's"
    for node in plan.nodes.values():  # steps travel to Ray workers
        assert pickle.loads(pickle.dumps(node.step)) == node.step


def test_status_of_a_fresh_plan_reads_only_what_is_there(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"instruction": "Say hi.", "output": "Hi."}) + "\n")
    plan = build_plan(make_grid(tmp_path))
    store = StepStore(tmp_path / "cache")
    status = node_status(plan, store)
    assert status["prepare/a"].key is not None, "an input file on disk gives its prepare key at once"
    assert status["prepare/b"].key is None and "no such file" in status["prepare/b"].why
    assert status["select/a/b4/longest"].key is None and "not prepared yet" in status["select/a/b4/longest"].why
    assert not any(s.cached for s in status.values())
    assert not (tmp_path / "cache").exists() and not (tmp_path / "run").exists(), "planning wrote nothing"
    doc = plan_json(plan, status)
    assert len(doc["steps"]) == len(plan.nodes) and len(doc["cells"]) == len(plan.cells)
    assert doc["steps"][0]["key"] == status["prepare/a"].key


def test_no_base_evaluation_when_asked(tmp_path):
    plan = build_plan(make_grid(tmp_path, evaluate_base=False, strategies={"longest": {}},
                                random={"seeds": [0]}, benchmarks={}))
    assert plan.base_evals == {} and len(plan.cells) == 2 * 2 * 2 * 2
    assert not [n for n in plan.nodes.values() if n.kind == "eval"]

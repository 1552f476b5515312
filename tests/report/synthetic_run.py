"""A small synthetic study written as a run folder, the files `selbench run` writes, made by hand.

One dataset ("pool", 400 examples), budgets 32 and 64, Longest + three overlap-constrained random seeds +
one strict-random seed + the full dataset, LoRA with the `demo` preset, two benchmarks: IFEval (per-item 1/0,
random models included) and the AlpacaEval head-to-head (per-instruction preferences against the random
models, with `opponent_seed`). Longest is built to beat random clearly on IFEval and in the head-to-head;
strict-random is drawn like random. Selection manifests, the dataset manifest, model `meta.json` files,
`grid.yaml` and `plan.json` are written as the runner lays them out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from selbench.hashing import sha256_lines

DATASET = "pool"
POOL = 400
BUDGETS = (32, 64)
SEEDS = (0, 1, 2)
DATA_SHA = "d" * 64
MODEL_SHA = "a1" * 32
TOKENIZER_SHA = "b2" * 32


def _selections(rng: np.random.Generator, budgets: tuple[int, ...], pool: int) -> list[dict]:
    """(strategy, seed, budget, ids) of every selection: longest takes the first ids, randoms mostly others."""
    ids = [f"ex{i:05d}" for i in range(pool)]
    out = [{"strategy": "full", "seed": None, "budget": pool, "ids": ids}]
    for budget in budgets:
        longest = ids[:budget]
        out.append({"strategy": "longest", "seed": None, "budget": budget, "ids": longest})
        for seed in SEEDS:
            shared = list(rng.choice(longest, size=budget // 5, replace=False))
            rest = list(rng.choice(ids[budget:], size=budget - len(shared), replace=False))
            out.append({"strategy": "random", "seed": seed, "budget": budget, "ids": shared + rest})
        out.append({"strategy": "strict-random", "seed": 0, "budget": budget,
                    "ids": list(rng.choice(ids[max(budgets):], size=budget, replace=False))})
    return out


def _scores(strategy: str, rng: np.random.Generator, n: int) -> np.ndarray:
    rate = {"longest": 0.85, "full": 0.6}.get(strategy, 0.4)
    return (rng.random(n) < rate).astype(float)


def make_run(root: Path, *, n_items: int = 40, model: str = "smollm2-135m-instruct", seed: int = 0,
             head_to_head: bool = True, missing_model: bool = False, budgets: tuple[int, ...] = BUDGETS,
             pool: int = POOL, full_finetuning: bool = False) -> Path:
    """Write the run folder under `root` and return its path (`full_finetuning`: every selection is also
    fine-tuned fully with the `set1` preset, for LoRA vs full)."""
    setups = [("demo", True), *([("set1", False)] if full_finetuning else [])]
    rng = np.random.default_rng(seed)
    run = root / "run"
    (run / "data" / DATASET).mkdir(parents=True)
    (run / "data" / DATASET / "manifest.json").write_text(json.dumps({
        "n": pool, "n_dropped": 0, "sha256": DATA_SHA, "source": "sharegpt",
        "subsample": {"limit": pool, "pool_sha256": "e" * 64, "seed": 0}}))
    cells, results, items = [], [], []
    for sel in _selections(rng, budgets, pool):
        strategy, sseed, budget = sel["strategy"], sel["seed"], sel["budget"]
        where = "full" if strategy == "full" else f"b{budget}"
        name = strategy if sseed is None else f"{strategy}-s{sseed}"
        path = run / "selections" / DATASET / where / f"{name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        scoring = 0.12 if strategy == "longest" else 0.0
        select_usd = 0.07 if strategy == "longest" else 0.001
        manifest = {"strategy": strategy, "budget": budget, "seed": sseed, "params": {},
                    "dataset": {"path": str(run / "data" / DATASET), "sha256": DATA_SHA, "n": pool},
                    "ids": sel["ids"], "ids_sha256": sha256_lines(sel["ids"]),
                    "cost": {"usd": select_usd, "wall_seconds": select_usd * 450, "step": f"select:{strategy}"},
                    "scores": {"length": {"config_key": "k" * 64, "cost": {"usd": scoring, "wall_seconds": 54.0}}}
                    if scoring else {}}
        path.write_text(json.dumps(manifest))
        for preset, lora in setups:
            cell_id = f"{DATASET}/{where}/{name}/{preset}"
            model_dir = run / "models" / cell_id.replace("/", "-")
            if not missing_model:
                model_dir.mkdir(parents=True)
                (model_dir / "meta.json").write_text(json.dumps({
                    "step": "train", "key": f"{len(cells):02d}" * 32,
                    "inputs": {"dataset": DATA_SHA, "ids": manifest["ids_sha256"],
                               "model": {"model_sha256": MODEL_SHA, "tokenizer_sha256": TOKENIZER_SHA}},
                    "libraries": {"torch": "2.13.0+cpu", "transformers": "5.24.0", "selbench": "0.1.0"}}))
            cells.append({"id": cell_id, "dataset": DATASET, "budget": None if strategy == "full" else budget,
                          "strategy": strategy, "seed": sseed, "preset": preset, "lora": lora,
                          "selection": str(path), "model": str(model_dir), "steps": []})
            train_usd = 0.004 * budget * (1 if lora else 3)
            cell = {"dataset": DATASET, "budget": budget, "strategy": strategy, "seed": sseed, "preset": preset,
                    "lora": lora}
            common = {**cell, "ids_sha256": manifest["ids_sha256"], "selection_cost_usd": scoring + select_usd,
                      "selection_seconds": (scoring + select_usd) * 450, "train_cost_usd": train_usd,
                      "train_seconds": train_usd * 450, "full_train_cost_usd_projected": 0.004 * pool * 1.05 * (1 if lora else 3),
                      "eval_cost_usd": 0.01, "n_selected": budget, "cell": cell_id, "model": str(model_dir)}
            scores = _scores(strategy, rng, n_items)
            items += [{**cell, "benchmark": "ifeval", "item": f"p{i}", "score": s, "opponent_seed": None, "cell": cell_id}
                      for i, s in enumerate(scores)]
            results += [{**common, "benchmark": "ifeval", "metric": m, "value": float(scores.mean()) + d}
                        for m, d in (("prompt_strict", 0.0), ("inst_strict", 0.05))]
            if head_to_head and strategy not in ("random", "full"):
                mean = 0.75 if strategy == "longest" else 0.5
                prefs = np.clip(rng.normal(mean, 0.25, n_items), 0, 1)
                items += [{**cell, "benchmark": "alpacaeval", "item": str(i), "score": float(p),
                           "opponent_seed": SEEDS[i % len(SEEDS)], "cell": cell_id} for i, p in enumerate(prefs)]
                win = float(prefs.mean()) * 100
                results += [{**common, "benchmark": "alpacaeval", "metric": "win_rate", "value": win},
                            {**common, "benchmark": "alpacaeval", "metric": "mean_adjusted_win_rate", "value": win - 50}]
    base = {"dataset": None, "budget": None, "strategy": "base", "seed": None, "preset": None, "lora": None}
    base_scores = _scores("base", rng, n_items)
    results += [{**base, "benchmark": "ifeval", "metric": "prompt_strict", "value": float(base_scores.mean()),
                 "cell": "base", "model": model}]
    items += [{**base, "benchmark": "ifeval", "item": f"p{i}", "score": s, "opponent_seed": None, "cell": "base"}
              for i, s in enumerate(base_scores)]
    _write_tables(run, results, items)
    grid = {"out": str(run), "model": model, "seed": 0,
            "datasets": {DATASET: {"source": "sharegpt", "input": "sharegpt", "limit": pool}},
            "budgets": list(budgets), "strategies": {"longest": {}, "full": {}},
            "random": {"seeds": list(SEEDS), "max_overlap": 0.3, "strict": True},
            "train": {"presets": [p for p, _ in setups]},
            "benchmarks": {"ifeval": {"limit": n_items},
                           "alpacaeval": {"limit": n_items, "judge": {"model": model}} if head_to_head else None}}
    (run / "grid.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    steps = [{"id": f"train/{c['id']}", "kind": "train", "step": "train", "key": f"{i:02d}" * 32, "cached": False}
             for i, c in enumerate(cells)]
    (run / "plan.json").write_text(json.dumps({"run_dir": str(run), "steps": steps, "cells": cells,
                                               "base_evals": {"ifeval": "eval/ifeval/base"}}))
    return run


def _write_tables(run: Path, results: list[dict], items: list[dict]) -> None:
    """As the runner writes them: pyarrow tables without pandas metadata (nullable ints read back as floats)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for name, rows in (("results.parquet", results), ("items.parquet", items)):
        columns = sorted({k for r in rows for k in r})
        pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in columns} for r in rows]), run / name)

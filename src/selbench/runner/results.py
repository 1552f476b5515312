"""The run's results tables, written (atomically) as cells finish: `results.parquet` and `items.parquet`.

`results.parquet`: one row per cell x benchmark x metric (DESIGN.md "The study"): the cell (`dataset`,
`budget`, `strategy`, `seed`, `preset`, `lora`), `benchmark`, `metric`, `value`, the selection's `ids_sha256`
and the cell's costs: `selection_cost_usd` / `selection_seconds` (the scoring runs the selection read, each
at the cost recorded when it was computed, plus picking the ids: the same whether or not this run found them
cached), `train_cost_usd` / `train_seconds`, and `full_train_cost_usd_projected`: fine-tuning on the whole
pool at the cell's measured training speed (tokens/s) x the pool's tokens (the prepare step's GPT-2 BPE
counts, plus 20 template tokens per example, each capped at `max_length`) x the preset's epochs, priced like
the cell's training. Also `eval_cost_usd` (that benchmark's step), `n_selected`, `cell` and `model`.

The base model's evaluations are rows with `strategy` = "base" and no dataset, budget, seed, preset or lora.

`items.parquet`: the cell columns + `benchmark`, `item`, `score` (one per item: IFEval prompt-level strict
1/0, LLMBar accuracy over both orders, head-to-head preference for the strategy's output in [0, 1] with the
random model it met in `opponent_seed`).

Column names are `selbench.analysis.tables`'s (the analysis reads them).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from selbench.runner.executors import Outcome
from selbench.runner.plan import Cell, Plan

RESULTS_FILE = "results.parquet"
ITEMS_FILE = "items.parquet"
CELL_COLUMNS = ("dataset", "budget", "strategy", "seed", "preset", "lora")
COST_COLUMNS = ("selection_cost_usd", "selection_seconds", "train_cost_usd", "train_seconds",
                "full_train_cost_usd_projected")
TEMPLATE_TOKENS = 20


def _schemas() -> tuple[Any, Any]:
    import pyarrow as pa

    cell = [("dataset", pa.string()), ("budget", pa.int64()), ("strategy", pa.string()), ("seed", pa.int64()),
            ("preset", pa.string()), ("lora", pa.bool_())]
    results = pa.schema([*cell, ("benchmark", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
                         ("ids_sha256", pa.string()), *((c, pa.float64()) for c in COST_COLUMNS),
                         ("eval_cost_usd", pa.float64()), ("n_selected", pa.int64()), ("cell", pa.string()),
                         ("model", pa.string())])
    items = pa.schema([*cell, ("benchmark", pa.string()), ("item", pa.string()), ("score", pa.float64()),
                       ("opponent_seed", pa.int64()), ("cell", pa.string())])
    return results, items


def _read_json(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def selection_cost(manifest: dict[str, Any], select: Outcome | None) -> tuple[float, float]:
    """(usd, seconds) of a selection: every scoring run it read, at its recorded cost, plus the select step."""
    usd = seconds = 0.0
    for info in (manifest.get("scores") or {}).values():
        usd += float((info.get("cost") or {}).get("usd", 0.0))
        seconds += float((info.get("cost") or {}).get("wall_seconds", 0.0))
    own = select.result.cost if select is not None and select.result is not None else {}
    return usd + float(own.get("usd", 0.0)), seconds + float(own.get("wall_seconds", 0.0))


def projected_full_cost(dataset_manifest: dict[str, Any], train_stats: dict[str, Any], train_cost: dict[str, Any],
                        config: Any) -> float | None:
    """Dollars of fine-tuning on the whole pool at this cell's training speed (None when unknown).

    >>> m = {"n": 1000, "tokens": {"instruction_input": {"mean": 50}, "output": {"mean": 110}}}
    >>> from types import SimpleNamespace
    >>> projected_full_cost(m, {"tokens_per_s": 100.0}, {"usd": 8.0, "wall_seconds": 3600.0},
    ...                     SimpleNamespace(max_length=512, epochs=2.0))
    8.0
    """
    speed = train_stats.get("tokens_per_s")
    seconds = float(train_cost.get("wall_seconds") or 0.0)
    if not speed or seconds <= 0:
        return None
    try:
        tokens = dataset_manifest["tokens"]
        per_example = float(tokens["instruction_input"]["mean"]) + float(tokens["output"]["mean"]) + TEMPLATE_TOKENS
        n = float(dataset_manifest["n"])
    except (KeyError, TypeError, ValueError):
        return None
    full_seconds = n * min(per_example, float(config.max_length)) * float(config.epochs) / float(speed)
    usd_per_second = float(train_cost.get("usd") or 0.0) / seconds
    return full_seconds * usd_per_second


class ResultsTables:
    """Rows of every finished cell, rewritten to the run folder each time a cell finishes."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}

    def add_cell(self, cell: Cell, outcomes: dict[str, Outcome]) -> None:
        manifest = _read_json(cell.selection_path)
        dataset = _read_json(Path(self.plan.run_dir / "data" / cell.dataset / "manifest.json"))
        sel_usd, sel_seconds = selection_cost(manifest, outcomes.get(cell.selection))
        train = outcomes[cell.train].result
        train_stats, train_cost = (train.stats, train.cost) if train is not None else ({}, {})
        config = self.plan.nodes[cell.train].step.train_config
        base = {"dataset": cell.dataset, "budget": int(manifest.get("budget") or cell.budget or 0) or None,
                "strategy": cell.strategy, "seed": cell.seed, "preset": cell.preset, "lora": cell.lora}
        common = {**base, "ids_sha256": manifest.get("ids_sha256"),
                  "selection_cost_usd": sel_usd, "selection_seconds": sel_seconds,
                  "train_cost_usd": train_cost.get("usd"),
                  "train_seconds": train_stats.get("train_seconds", train_cost.get("wall_seconds")),
                  "full_train_cost_usd_projected": projected_full_cost(dataset, train_stats, train_cost, config),
                  "n_selected": len(manifest.get("ids") or []) or None, "cell": cell.id, "model": cell.model_path}
        self.rows[cell.id], self.items[cell.id] = self._benchmark_rows(common, base, cell.id, cell.evals, outcomes)

    def add_base(self, outcomes: dict[str, Outcome]) -> None:
        base = {"dataset": None, "budget": None, "strategy": "base", "seed": None, "preset": None, "lora": None}
        common = {**base, "ids_sha256": None, "n_selected": None, "cell": "base", "model": self.plan.grid.model,
                  **dict.fromkeys(COST_COLUMNS)}
        done = {b: n for b, n in self.plan.base_evals.items() if n in outcomes and outcomes[n].ok}
        self.rows["base"], self.items["base"] = self._benchmark_rows(common, base, "base", done, outcomes)

    @staticmethod
    def _benchmark_rows(common: dict[str, Any], base: dict[str, Any], cell_id: str, evals: dict[str, str],
                        outcomes: dict[str, Outcome]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from selbench.runner.interim_evals import read_items

        rows, items = [], []
        for benchmark, node_id in evals.items():
            result = outcomes[node_id].result
            if result is None:
                continue
            for metric, value in sorted((result.stats.get("metrics") or {}).items()):
                rows.append({**common, "benchmark": benchmark, "metric": metric,
                             "value": None if value is None else float(value),
                             "eval_cost_usd": float(result.cost.get("usd", 0.0))})
            for item in read_items(result.path):
                items.append({**base, "benchmark": benchmark, "item": str(item["item"]),
                              "score": float(item["score"]), "opponent_seed": item.get("opponent_seed"),
                              "cell": cell_id})
        return rows, items

    def write(self) -> tuple[Path, Path]:
        """Write both tables (a temporary file renamed over the old: readers never see half a table)."""
        import pyarrow as pa

        results_schema, items_schema = _schemas()
        rows = [r for cell in self.rows.values() for r in cell]
        items = [r for cell in self.items.values() for r in cell]
        paths = (self.plan.run_dir / RESULTS_FILE, self.plan.run_dir / ITEMS_FILE)
        for path, data, schema in ((paths[0], rows, results_schema), (paths[1], items, items_schema)):
            table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in data], schema=schema)
            _write_parquet_atomic(table, path)
        return paths


def _write_parquet_atomic(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

"""The run's results tables, written (atomically) as cells finish: `results.parquet` and `items.parquet`.

`results.parquet`: one row per cell x benchmark x metric (DESIGN.md "The study"): the cell (`dataset`,
`budget`, `strategy`, `seed`, `preset`, `lora`), `benchmark`, `metric`, `value`, the selection's `ids_sha256`
and the cell's costs: `selection_cost_usd` / `selection_seconds` (the scoring runs the selection read, each
at the cost recorded when it was computed, plus picking the ids: the same whether or not this run found them
cached), `train_cost_usd` / `train_seconds`, and `full_train_cost_usd_projected`: fine-tuning on the whole
pool at the cell's measured training speed (tokens/s) x the pool's tokens (the prepare step's GPT-2 BPE
counts, plus 20 template tokens per example, each capped at `max_length`) x the preset's epochs, priced like
the cell's training. Also `eval_cost_usd` (that benchmark's step), `n_selected`, `cell` and `model`.

The base model is not a cell: its evaluations go to `base.parquet` and `base_items.parquet` (the same columns,
`strategy` = "base", no dataset, budget, seed, preset or lora), so the analysis of cells never meets it.

`items.parquet`: the cell columns + `benchmark`, `item`, `score` (one per item: IFEval prompt-level strict
1/0, LLMBar accuracy over both orders, head-to-head preference for the strategy's output in [0, 1] with the
random model it met in `opponent_seed`).

Dollars are the cost records' seconds and API tokens priced with the grid's price sheet (`prices`; the study's
8 USD per node-hour by default), so changing the sheet re-prices a finished study without running anything.

Column names are `selbench.analysis.tables`'s (the analysis reads them with its readers).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from selbench.analysis import tables as T
from selbench.runner.executors import Outcome
from selbench.runner.plan import Cell, Plan
from selbench.store import StepStore

RESULTS_FILE = "results.parquet"
ITEMS_FILE = "items.parquet"
BASE_FILE = "base.parquet"
BASE_ITEMS_FILE = "base_items.parquet"
BASE = "base"
TEMPLATE_TOKENS = 20


def _schemas() -> tuple[Any, Any]:
    """(results, items) Arrow schemas: the analysis's columns first, then the runner's extras."""
    import pyarrow as pa

    types = {T.DATASET: pa.string(), T.BUDGET: pa.int64(), T.STRATEGY: pa.string(), T.SEED: pa.int64(),
             T.PRESET: pa.string(), T.LORA: pa.bool_(), T.BENCHMARK: pa.string(), T.METRIC: pa.string(),
             T.VALUE: pa.float64(), T.IDS_SHA256: pa.string(), T.ITEM: pa.string(), T.SCORE: pa.float64(),
             **dict.fromkeys(T.COST_COLUMNS, pa.float64())}
    results = pa.schema([*((c, types[c]) for c in T.RESULTS_COLUMNS), ("eval_cost_usd", pa.float64()),
                         ("n_selected", pa.int64()), ("cell", pa.string()), ("model", pa.string())])
    items = pa.schema([*((c, types[c]) for c in T.ITEMS_COLUMNS), (T.OPPONENT_SEED, pa.int64()),
                       ("cell", pa.string())])
    return results, items


def _read_json(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def selection_cost(manifest: dict[str, Any], select: Outcome | None, prices: Any = None) -> tuple[float, float]:
    """(usd, seconds) of a selection: every scoring run and prerequisite model step it read (Cherry's
    pre-experienced model), each at its recorded cost, plus the select step."""
    from selbench.cost.tables import price_usd

    records = [info.get("cost") or {} for info in
               [*(manifest.get("scores") or {}).values(), *(manifest.get("prerequisites") or {}).values()]]
    records.append(select.result.cost if select is not None and select.result is not None else {})
    return (sum(price_usd(r, prices) for r in records if r),
            sum(float(r.get("wall_seconds", 0.0)) for r in records))


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


# The metrics of each benchmark that become results rows (all higher-is-better); benchmarks not listed give
# every number their step reports under `metrics` (the OpenLLM tasks, the head-to-head's win rates).
HEADLINES = {"ifeval": ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose"),
             "llmbar": ("accuracy", "agreement")}


def headline_metrics(benchmark: str, result: Any) -> list[tuple[str, float | None]]:
    """(metric, value) rows of a finished evaluation step: its `metrics.json` (stage steps) or its stats'
    `metrics` (the runner's own steps)."""
    found = result.stats.get("metrics")
    if found is None:
        found = _read_json(result.path / "metrics.json")
    names = HEADLINES.get(benchmark) or sorted(found)
    return [(name, found.get(name)) for name in names if name in found and not isinstance(found[name], dict)]


class ResultsTables:
    """Rows of every finished cell, rewritten to the run folder each time a cell finishes."""

    def __init__(self, plan: Plan) -> None:
        from selbench.runner.estimate import price_sheet

        self.plan = plan
        self.prices = price_sheet(plan.grid.prices) if plan.grid.prices is not None else None
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.base_rows: list[dict[str, Any]] = []
        self.base_items: list[dict[str, Any]] = []

    def add_cell(self, cell: Cell, outcomes: dict[str, Outcome]) -> None:
        manifest = _read_json(cell.selection_path)
        dataset = _read_json(Path(self.plan.run_dir / "data" / cell.dataset / "manifest.json"))
        sel_usd, sel_seconds = selection_cost(manifest, outcomes.get(cell.selection), self.prices)
        train = outcomes[cell.train].result
        train_stats, train_cost = (train.stats, self._priced(train.cost)) if train is not None else ({}, {})
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

    def _priced(self, record: dict[str, Any]) -> dict[str, Any]:
        """The cost record with `usd` under the grid's price sheet."""
        from selbench.cost.tables import price_usd

        return {**record, "usd": price_usd(record, self.prices)} if record else {}

    def add_base(self, outcomes: dict[str, Outcome]) -> None:
        base = {**dict.fromkeys(T.CELL_COLUMNS), T.STRATEGY: BASE}
        common = {**base, "ids_sha256": None, "n_selected": None, "cell": BASE, "model": self.plan.grid.model,
                  **dict.fromkeys(T.COST_COLUMNS)}
        done = {b: n for b, n in self.plan.base_evals.items() if n in outcomes and outcomes[n].ok}
        self.base_rows, self.base_items = self._benchmark_rows(common, base, BASE, done, outcomes)

    def _eval_cost(self, result: Any) -> float:
        """Dollars of an evaluation: its step, plus the generation step it read (IFEval keeps them apart)."""
        usd = float(self._priced(result.cost).get("usd", 0.0))
        generation = result.stats.get("generation_key")
        if generation:
            found = StepStore(result.path.parents[2]).lookup("generate", generation)
            if found is not None:
                usd += float(self._priced(found.cost).get("usd", 0.0))
        return usd

    def _benchmark_rows(self, common: dict[str, Any], base: dict[str, Any], cell_id: str, evals: dict[str, str],
                        outcomes: dict[str, Outcome]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        from selbench.evaluation.base import ITEMS_FILE as STEP_ITEMS
        from selbench.evaluation.base import read_items

        rows, items = [], []
        for benchmark, node_id in evals.items():
            result = outcomes[node_id].result
            if result is None:
                continue
            cost = self._eval_cost(result)
            for metric, value in headline_metrics(benchmark, result):
                rows.append({**common, "benchmark": benchmark, "metric": metric,
                             "value": None if value is None else float(value), "eval_cost_usd": cost})
            for item in read_items(result.path) if (result.path / STEP_ITEMS).is_file() else ():
                items.append({**base, "benchmark": benchmark, "item": str(item["item"]),
                              "score": float(item["score"]), "opponent_seed": item.get("opponent_seed"),
                              "cell": cell_id})
        return rows, items

    def write(self) -> tuple[Path, Path]:
        """Write the tables (each a temporary file renamed over the old: readers never see half a table);
        returns the paths of `results.parquet` and `items.parquet`."""
        import pyarrow as pa

        results_schema, items_schema = _schemas()
        run = self.plan.run_dir
        tables = [(run / RESULTS_FILE, [r for cell in self.rows.values() for r in cell], results_schema),
                  (run / ITEMS_FILE, [r for cell in self.items.values() for r in cell], items_schema)]
        if self.plan.base_evals:
            tables += [(run / BASE_FILE, self.base_rows, results_schema),
                       (run / BASE_ITEMS_FILE, self.base_items, items_schema)]
        for path, data, schema in tables:
            table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in data], schema=schema)
            _write_parquet_atomic(table, path)
        return run / RESULTS_FILE, run / ITEMS_FILE


def _write_parquet_atomic(table: Any, path: Path) -> None:
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

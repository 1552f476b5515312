"""The study's cost tables, from the cost records of a run folder.

Diddee & Ippolito price every step at 8 USD per hour of their whole node and report (their Table 6) the
wall-clock cost of selecting with each strategy per 1,000 examples of the pool, and (their Table 2) the total
selection cost in USD next to the cost of fine-tuning on the full dataset. Their point: scoring touches every example of the pool, so
selection cost grows with the pool, not with the budget.

Assumptions (documented because the tables depend on them):

* Scoring is counted once per (dataset, scorer config key), with the cost recorded by the run that
  computed it, however many budgets and manifests reuse it; so is every prerequisite step a manifest lists
  (`prerequisites`: Cherry's embeddings, pre-experienced data and pre-experienced model).
* A selection is identified by (dataset, strategy, params, budget, seed); copies of the same manifest count
  once. Its own cost is the "select" step's record (picking ids once the scores exist).
* Table 6: per 1,000 examples = (scoring + mean cost of one selection) / (pool size / 1000).
* Table 2: total = scoring + every selection of that strategy; fine-tuning on the full dataset is the mean
  cost of the "train" records whose selection is the `full` strategy (or covers the whole pool) on that
  dataset. Absent such records it is *projected* from the measured runs on that dataset: their cost per
  training example times the pool size (random and strict-random runs are preferred, since a uniform
  subset has the pool's mean length; a Longest subset would overstate it), and marked projected.

`collect_costs` reads the folder; `selection_cost_rows` and `selection_vs_full_rows` are pure.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selbench.cost.prices import PriceSheet
from selbench.hashing import canonical_json

log = logging.getLogger(__name__)

_MANIFEST_FIELDS = ("strategy", "budget", "dataset", "ids", "ids_sha256")
_TRAIN_FILES = ("meta.json", "step_meta.json", "cost.json", "train_config.json")


@dataclass(frozen=True)
class SelectionCost:
    """One selection's cost facts.

    Args:
        dataset: dataset sha256.
        dataset_name: folder name of the dataset, for display.
        pool_size: examples in the dataset.
        strategy / budget: what was selected.
        identity: canonical (strategy, params, budget, seed), to count duplicated manifests once.
        select_usd / select_seconds: the select step's own cost.
        scores: (config key, usd, seconds) of each scoring run it used.
    """

    dataset: str
    dataset_name: str
    pool_size: int
    strategy: str
    budget: int
    identity: str
    select_usd: float
    select_seconds: float
    scores: tuple[tuple[str, float, float], ...] = ()


@dataclass(frozen=True)
class TrainCost:
    """One fine-tuning run's cost: dataset sha256, the selection's strategy and size (None if unknown)."""

    dataset: str
    strategy: str | None
    n_examples: int | None
    usd: float
    seconds: float


def price_usd(record: dict[str, Any], prices: PriceSheet | None) -> float:
    """The record's dollars: as recorded, or recomputed from its seconds and API tokens with `prices`."""
    if prices is None:
        return float(record.get("usd", 0.0))
    usd = float(record.get("wall_seconds", 0.0)) / 3600.0 * prices.node_rate(record.get("device_kind", "cpu"))
    for model, tokens in (record.get("extra") or {}).get("api_models", {}).items():
        price = prices.api_price(model)
        usd += tokens.get("input", 0) / 1e6 * price.input_per_1m + tokens.get("output", 0) / 1e6 * price.output_per_1m
    return usd


def _select_part(cost: dict[str, Any]) -> dict[str, Any]:
    for part in (cost.get("extra") or {}).get("parts", []):
        if str(part.get("step", "")).startswith("select:"):
            return part
    return cost


def manifest_selection_cost(manifest: dict[str, Any], prices: PriceSheet | None = None) -> SelectionCost:
    """The cost facts of one selection manifest (`strategy`, `budget`, `dataset`, `scores`, `cost`)."""
    part = _select_part(manifest.get("cost") or {})
    # Scores and the prerequisite steps a strategy ran first (Cherry's embeddings, clusters, trained model)
    # are each counted once per key, however many selections reuse them.
    used = [*(manifest.get("scores") or {}).values(), *(manifest.get("prerequisites") or {}).values()]
    scores = tuple(
        (info.get("config_key") or info["key"], price_usd(info.get("cost") or {}, prices),
         float((info.get("cost") or {}).get("wall_seconds", 0.0)))
        for info in used
    )
    dataset = manifest["dataset"]
    return SelectionCost(
        dataset=dataset.get("sha256", ""), dataset_name=Path(str(dataset.get("path", "?"))).name,
        pool_size=int(dataset.get("n") or 0), strategy=manifest["strategy"], budget=int(manifest["budget"]),
        identity=canonical_json([manifest["strategy"], manifest.get("params"), manifest["budget"], manifest.get("seed")]),
        select_usd=price_usd(part, prices), select_seconds=float(part.get("wall_seconds", 0.0)), scores=scores,
    )


def _selections(deduped: list[SelectionCost]) -> dict[tuple[str, str], list[SelectionCost]]:
    groups: dict[tuple[str, str], dict[str, SelectionCost]] = defaultdict(dict)
    for sel in deduped:
        groups[(sel.dataset, sel.strategy)].setdefault(sel.identity, sel)
    return {key: list(found.values()) for key, found in sorted(groups.items())}


def _scoring(sels: list[SelectionCost]) -> tuple[float, float]:
    unique = {key: (usd, sec) for sel in sels for key, usd, sec in sel.scores}
    return sum(u for u, _ in unique.values()), sum(s for _, s in unique.values())


def selection_cost_rows(selections: list[SelectionCost]) -> list[dict[str, Any]]:
    """Table 6: selection cost (wall clock and USD) per 1,000 pool examples, per (dataset, strategy).

    >>> sel = SelectionCost("d", "alpaca", 2000, "longest", 100, "a", 1.0, 1.0, (("k", 3.0, 9.0),))
    >>> selection_cost_rows([sel, sel])[0]["usd_per_1k"]
    2.0
    """
    rows = []
    for (dataset, strategy), sels in _selections(selections).items():
        score_usd, score_s = _scoring(sels)
        select_usd = sum(s.select_usd for s in sels) / len(sels)
        select_s = sum(s.select_seconds for s in sels) / len(sels)
        per_k = sels[0].pool_size / 1000.0
        rows.append({
            "dataset": sels[0].dataset_name, "dataset_sha256": dataset, "strategy": strategy,
            "pool_size": sels[0].pool_size, "n_selections": len(sels),
            "budgets": sorted({s.budget for s in sels}),
            "scoring_usd": score_usd, "scoring_seconds": score_s,
            "selection_usd": select_usd, "selection_seconds": select_s,
            "usd_per_1k": (score_usd + select_usd) / per_k if per_k else 0.0,
            "seconds_per_1k": (score_s + select_s) / per_k if per_k else 0.0,
        })
    return rows


def selection_vs_full_rows(
    selections: list[SelectionCost],
    trains: list[TrainCost],
    projected: dict[str, tuple[float, float]] | None = None,
) -> list[dict[str, Any]]:
    """Table 2: total selection cost per (dataset, strategy) next to full-dataset fine-tuning cost
    (measured, or projected from the measured runs' cost per example; see the module docstring).

    `projected` (dataset sha256 -> (usd, seconds)) replaces that per-example projection where it is given,
    e.g. with the run's own token-based projection (`full_train_cost_usd_projected` of its results table),
    so that Table 2 and the verdict table compare against the same number.

    >>> sel = SelectionCost("d", "alpaca", 2000, "longest", 100, "a", 1.0, 1.0, (("k", 3.0, 9.0),))
    >>> row = selection_vs_full_rows([sel], [TrainCost("d", "full", 2000, 8.0, 3600.0)])[0]
    >>> row["total_selection_usd"], row["full_finetune_usd"], row["ratio"], row["full_finetune_projected"]
    (4.0, 8.0, 0.5, False)
    >>> row = selection_vs_full_rows([sel], [TrainCost("d", "random", 100, 0.2, 90.0)])[0]
    >>> round(row["full_finetune_usd"], 6), row["full_finetune_projected"], row["full_finetune_seconds"]
    (4.0, True, 1800.0)
    """
    pool = {s.dataset: s.pool_size for s in selections}
    full: dict[str, list[float]] = defaultdict(list)
    for t in trains:
        if t.strategy == "full" or (t.n_examples is not None and t.n_examples == pool.get(t.dataset)):
            full[t.dataset].append(t.usd)
    full_seconds: dict[str, list[float]] = defaultdict(list)
    for t in trains:
        if t.strategy == "full" or (t.n_examples is not None and t.n_examples == pool.get(t.dataset)):
            full_seconds[t.dataset].append(t.seconds)
    projected_by = projected or {}
    rows = []
    for (dataset, strategy), sels in _selections(selections).items():
        score_usd, _ = _scoring(sels)
        total = score_usd + sum(s.select_usd for s in sels)
        projected = False
        if full.get(dataset):
            full_usd = sum(full[dataset]) / len(full[dataset])
            full_s = sum(full_seconds[dataset]) / len(full_seconds[dataset])
        elif projected_by and dataset in projected_by:
            full_usd, full_s = projected_by[dataset]
            projected = True
        else:
            full_usd, full_s = _project_full(dataset, pool.get(dataset, 0), trains)
            projected = full_usd is not None
        rows.append({
            "dataset": sels[0].dataset_name, "dataset_sha256": dataset, "strategy": strategy,
            "n_selections": len(sels), "total_selection_usd": total, "full_finetune_usd": full_usd,
            "full_finetune_seconds": full_s, "full_finetune_projected": projected,
            "ratio": total / full_usd if full_usd else None,
        })
    return rows


def _project_full(dataset: str, pool_size: int, trains: list[TrainCost]) -> tuple[float | None, float | None]:
    """(usd, seconds) of fine-tuning on all `pool_size` examples, from measured runs' cost per example."""
    measured = [t for t in trains if t.dataset == dataset and t.n_examples and t.seconds > 0]
    uniform = [t for t in measured if t.strategy in ("random", "strict-random")]
    basis = uniform or measured
    if not basis or not pool_size:
        return None, None
    n = sum(t.n_examples or 0 for t in basis)
    return sum(t.usd for t in basis) / n * pool_size, sum(t.seconds for t in basis) / n * pool_size


def _json_files(run_dir: Path) -> Iterator[tuple[Path, Any]]:
    for path in sorted(run_dir.rglob("*.json")):
        if path.name.startswith("."):
            continue
        try:
            yield path, json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            log.warning("skipping %s: %s", path, exc)


def _strings(obj: Any) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from _strings(value)
    elif isinstance(obj, list) and len(obj) < 1000:
        for value in obj:
            yield from _strings(value)


def _n_examples(objs: Any) -> int | None:
    for obj in objs:
        n = (obj.get("stats") or {}).get("n_examples") if isinstance(obj.get("stats"), dict) else None
        if isinstance(n, int):
            return n
    return None


def collect_costs(run_dir: str | Path, prices: PriceSheet | None = None) -> tuple[list[SelectionCost], list[TrainCost]]:
    """Selection manifests and training cost records found under `run_dir`.

    A training run is a folder whose `meta.json`, `step_meta.json` or `cost.json` has a `step` starting with
    "train". It is linked to a selection when any string in that folder's JSON files is a manifest's
    `ids_sha256`, `select_key` or path (training on a whole dataset hashes the same ids as `full`), else to
    a dataset when one is a dataset sha256, with its size from `stats.n_examples`.
    """
    run_dir = Path(run_dir)
    files = list(_json_files(run_dir))
    selections: list[SelectionCost] = []
    by_string: dict[str, SelectionCost] = {}
    for path, obj in files:
        if not (isinstance(obj, dict) and all(f in obj for f in _MANIFEST_FIELDS)):
            continue
        sel = manifest_selection_cost(obj, prices)
        selections.append(sel)
        for key in (obj["ids_sha256"], obj.get("select_key"), str(path), str(path.resolve())):
            if key:
                by_string[key] = sel
    datasets = {s.dataset for s in selections}
    # One training run per folder: the store's `meta.json`, or a published output's `cost.json` beside
    # `step_meta.json` / `train_config.json` (what `selbench train --out` writes).
    folders: dict[Path, list[Any]] = defaultdict(list)
    for path, obj in files:
        if path.name in _TRAIN_FILES and isinstance(obj, dict):
            folders[path.parent].append((path.name, obj))
    trains: list[TrainCost] = []
    for _, found in sorted(folders.items()):
        objs = dict(found)
        record = next((o.get("cost") if "cost" in o else o for name, o in sorted(objs.items())
                       if name in ("meta.json", "step_meta.json", "cost.json")
                       and str(o.get("step", "")).startswith("train")), None)
        if not isinstance(record, dict):
            continue
        strings = [s for o in objs.values() for s in _strings(o)]
        matched = next((by_string[s] for s in strings if s in by_string), None)
        dataset = matched.dataset if matched else next((s for s in strings if s in datasets), "")
        n_examples = matched.budget if matched else _n_examples(objs.values())
        trains.append(TrainCost(
            dataset=dataset, strategy=matched.strategy if matched else None, n_examples=n_examples,
            usd=price_usd(record, prices), seconds=float(record.get("wall_seconds", 0.0)),
        ))
    return selections, trains

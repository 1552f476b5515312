"""Running a strategy on a prepared dataset and writing its selection manifest.

This is the I/O shell around the pure strategies in this package: it reads the dataset's ids, fetches the
scores a strategy needs through the cached "score" step, maps `--against` manifests onto pool indices, runs
the strategy as the cached "select" step (key: dataset sha256, strategy, VERSION, params, budget, seed, the
scores' keys and the against selections' `ids_sha256`, in order) and writes the manifest atomically.

Manifest (DESIGN.md "selection manifest"): `strategy`, `params`, `budget`, `seed`, `dataset` {path, sha256,
n}, `ids` (selection order), `ids_sha256`, `scores` {role: {path, scorer, config_key, config, cost}} where
`cost` is the record of the run that computed the scores (so cost tables count each scoring once),
`against` {name: {path, strategy, budget, ids_sha256}}, `overlap` {name: shared / budget}, `fallback`
{used, reason}, `select_key`, `info`, and `cost`: the select step's record plus what scoring cost *this
call* (zero when the scores were cached), with the parts listed in `cost.extra.parts`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from selbench.cost import CostMeter, CostRecord, PriceSheet
from selbench.errors import InputError
from selbench.hashing import sha256_lines
from selbench.store import StepStore, write_json_atomic
from selbench.scoring.base import compute_scores, prepared_data_file, read_scores
from selbench.selection.base import STRATEGIES, Pool, strategy_params

log = logging.getLogger(__name__)

STEP = "select"
SELECTION_FILE = "selection.json"
REQUIRED_FIELDS = ("strategy", "budget", "dataset", "ids", "ids_sha256")


@dataclass
class SelectionRun:
    """manifest: what was written; seconds: wall time of this call; cached: the select step was cached."""

    manifest: dict[str, Any]
    seconds: float
    cached: bool


def load_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check a selection manifest (InputError naming the file and field when malformed)."""
    path = Path(path)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read selection manifest: {exc.strerror or exc}", path=path) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", path=path, line=exc.lineno) from exc
    except RecursionError:
        raise InputError("not JSON that can be parsed: nested too deeply", path=path) from None
    if not isinstance(manifest, dict):
        raise InputError("a selection manifest is a JSON object", path=path)
    for name in REQUIRED_FIELDS:
        if name not in manifest:
            raise InputError("missing (not a selection manifest?)", path=path, field=name)
    ids = manifest["ids"]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InputError("must be a list of example ids", path=path, field="ids")
    if sha256_lines(ids) != manifest["ids_sha256"]:
        raise InputError("does not match the ids (file edited?)", path=path, field="ids_sha256")
    if not isinstance(manifest["dataset"], dict) or "sha256" not in manifest["dataset"]:
        raise InputError("needs a 'sha256' entry", path=path, field="dataset")
    return manifest


def manifest_names(paths: Sequence[str | Path]) -> list[str]:
    """Short unique names for manifests: file stems, suffixed `#2`, `#3`... on collisions."""
    names: list[str] = []
    for path in paths:
        stem = Path(path).stem
        name, k = stem, 1
        while name in names:
            k += 1
            name = f"{stem}#{k}"
        names.append(name)
    return names


def _against_indices(paths: Sequence[str | Path], index_of: Mapping[str, int], dataset_sha: str,
                     names: Sequence[str]) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    indices: dict[str, np.ndarray] = {}
    described: dict[str, dict[str, Any]] = {}
    for path, name in zip(paths, names, strict=True):
        manifest = load_manifest(path)
        if manifest["dataset"]["sha256"] != dataset_sha:
            raise InputError(f"selects from dataset {manifest['dataset']['sha256'][:12]}, not from --data "
                             f"({dataset_sha[:12]})", path=path, field="dataset.sha256")
        try:
            indices[name] = np.fromiter((index_of[i] for i in manifest["ids"]), dtype=np.int64,
                                        count=len(manifest["ids"]))
        except KeyError as exc:
            raise InputError(f"id {exc.args[0]!r} is not in the dataset", path=path, field="ids") from exc
        described[name] = {"path": str(path), "strategy": manifest["strategy"], "budget": manifest["budget"],
                           "ids_sha256": manifest["ids_sha256"]}
    return indices, described


def run_selection(
    data: str | Path,
    strategy_name: str,
    budget: int | None,
    out: str | Path,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    against: Sequence[str | Path] = (),
    store: StepStore | None = None,
    prices: PriceSheet | None = None,
) -> SelectionRun:
    """Select `budget` examples of the prepared dataset `data` with a registered strategy; write `out`.

    Args:
        data: prepared dataset folder.
        strategy_name: registered strategy ("random", "strict-random", "longest", "full", ...).
        budget: number of examples; None means the whole pool (only sensible for "full").
        out: manifest path (JSON), written atomically.
        params: strategy parameters (fields of its dataclass).
        seed: seed of the strategy's random generator.
        against: manifests of other selections, for the random baselines.
        store: the step store (default `$SELBENCH_CACHE`).
        prices: price sheet for the cost records.

    Returns:
        The manifest written, this call's wall seconds and whether the selection was cached.
    """
    import pyarrow.parquet as pq

    from selbench.data.schema import dataset_sha256

    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"{seed!r} is not an integer >= 0", field="seed")
    started = time.perf_counter()
    store = store or StepStore()
    data_file = prepared_data_file(data)
    ids: list[str] = pq.read_table(data_file, columns=["id"]).column("id").to_pylist()
    n = len(ids)
    budget = n if budget is None else int(budget)
    if budget < 1 or budget > n:
        raise InputError(f"budget {budget} must be between 1 and the pool size ({n} examples)", path=data_file,
                         field="budget")
    try:
        strategy = STRATEGIES.get(strategy_name)(**dict(params or {}))
    except TypeError as exc:
        raise InputError(f"bad parameters for strategy {strategy_name!r}: {exc}", field="params") from exc
    if against and not strategy.uses_against:
        raise InputError(f"strategy {strategy_name!r} does not take --against selections", field="against")
    dataset_sha = dataset_sha256(data_file.parent)

    names = manifest_names(against)
    index_of = {example_id: i for i, example_id in enumerate(ids)} if against else {}
    against_idx, against_info = _against_indices(against, index_of, dataset_sha, names)
    reference = getattr(strategy, "reference_budget", None)
    if reference is not None:
        for name, sel in against_idx.items():
            if len(sel) < min(reference, n):
                raise InputError(f"selects {len(sel)} examples, fewer than --reference-budget {reference}: "
                                 "pass selections made at the reference budget (or lower it)",
                                 path=against_info[name]["path"], field="budget")

    scores: dict[str, dict[str, np.ndarray]] = {}
    scores_info: dict[str, dict[str, Any]] = {}
    call_costs: list[dict[str, Any]] = []
    for role, (scorer, options) in strategy.score_requests().items():
        result = compute_scores(data_file.parent, scorer, options, store, prices=prices)
        score_ids, columns = read_scores(result.path)
        if score_ids != ids:
            raise InputError(
                f"does not hold the examples its cached scores were computed on ({result.path}): run `selbench "
                "data prepare` again",
                path=data_file,
                field="id",
            )
        scores[role] = columns
        scores_info[role] = {"path": str(result.path), "scorer": scorer, "config_key": result.key,
                             "config": result.config, "cost": result.cost, "cached": result.cached}
        call_costs.append(result.call_cost)

    params_dict = strategy_params(strategy)
    pool = Pool(n=n, scores=scores, against=against_idx)

    def compute(tmp: Path) -> dict[str, Any]:
        with CostMeter(f"{STEP}:{strategy_name}", prices=prices) as meter:
            selection = strategy.select(pool, budget, np.random.default_rng(seed))
            indices = np.asarray(selection.indices, dtype=np.int64)
            assert len(indices) == budget and len(np.unique(indices)) == budget, (
                f"strategy {strategy_name} returned {len(indices)} indices ({len(np.unique(indices))} unique) "
                f"for budget {budget}")
            chosen = [ids[i] for i in indices]
            write_json_atomic(tmp / SELECTION_FILE, {"ids": chosen, "fallback": selection.fallback,
                                                     "info": selection.info}, indent=None)
        return {"n_selected": budget, "fallback": selection.fallback, "cost": meter.record.to_dict()}

    step = store.run(
        STEP, strategy.VERSION,
        {"strategy": strategy_name, "params": params_dict, "budget": budget, "seed": seed},
        {"dataset": dataset_sha, "scores": {role: info["config_key"] for role, info in scores_info.items()},
         "against": [against_info[name]["ids_sha256"] for name in names]},
        compute,
    )
    stored = json.loads((step.path / SELECTION_FILE).read_text(encoding="utf-8"))
    chosen_ids: list[str] = stored["ids"]
    chosen_set = set(chosen_ids)
    overlap = {name: sum(ids[i] in chosen_set for i in against_idx[name]) / budget for name in names}

    parts = [*call_costs, dict(step.cost)]
    total = CostRecord(step=f"{STEP}:{strategy_name}")
    for part in parts:
        total = total + CostRecord.from_dict(part)
    cost = total.to_dict()
    cost["step"] = f"{STEP}:{strategy_name}"
    cost["extra"] = {"parts": parts, "select_cached": step.cached}

    manifest = {
        "strategy": strategy_name,
        "params": params_dict,
        "budget": budget,
        "seed": seed,
        "dataset": {"path": str(Path(data)), "sha256": dataset_sha, "n": n},
        "ids": chosen_ids,
        "ids_sha256": sha256_lines(chosen_ids),
        "scores": scores_info,
        "against": against_info,
        "overlap": overlap,
        "fallback": {"used": stored["fallback"] is not None, "reason": stored["fallback"]},
        "select_key": step.key,
        "info": stored.get("info", {}),
        "cost": cost,
    }
    write_json_atomic(out, manifest)
    return SelectionRun(manifest=manifest, seconds=time.perf_counter() - started, cached=step.cached)

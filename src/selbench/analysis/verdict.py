"""The verdict table: per (dataset, budget, preset, lora, benchmark) x strategy, does it beat random, and at what cost?

The answer selbench exists to give. Each strategy's model is compared with the random baselines of its
setup on per-item scores (`items.parquet`):

* benchmarks the random models were scored on: `stats.compare_to_random` (calibrated for seed-to-seed
  variation: the strategy must stand out from the random seeds' spread, not only from item noise);
* the head-to-head (random models are the opponents, not scored themselves): `stats.compare_head_to_head`
  on the per-instruction preferences, grouped by `opponent_seed`.

The two one-sided p-values of each row make a two-sided p-value (2 x the smaller); Holm's step-down
correction runs over every tested row of the table at once (all datasets, budgets, benchmarks and
strategies), and a row is "beats random" when its Holm-adjusted p-value is below `alpha` and the strategy
scored higher, "loses" when below `alpha` and lower, "ties" otherwise ("untested" when the data cannot
support a test: fewer than two random seeds, no per-item scores; `reason` says which).

The cost columns answer "is it worth it": the extra dollars the strategy's selection cost over random
selection in the same setup, and whether selection + training on the subset cost more than the projected
cost of fine-tuning on the whole dataset (the study's finding that it often does).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from selbench.analysis.stats import compare_head_to_head, compare_to_random, holm
from selbench.analysis.tables import (
    BENCHMARK,
    CELL_COLUMNS,
    FULL,
    FULL_TRAIN_COST_USD_PROJECTED,
    ITEM,
    ITEMS_COLUMNS,
    OPPONENT_SEED,
    RANDOM,
    SCORE,
    SEED,
    SELECTION_COST_USD,
    SETUP_COLUMNS,
    STRATEGY,
    TRAIN_COST_USD,
    check_results,
    duplicated_keys,
    require_columns,
)

BEATS, TIES, LOSES, UNTESTED = "beats random", "ties", "loses", "untested"
_GROUP = [*SETUP_COLUMNS, BENCHMARK]
_STAT_KEYS = ["delta", "ci_low", "ci_high", "p_value", "p_two_sided", "n_items", "n_seeds", "reference"]
COLUMNS = [*SETUP_COLUMNS, BENCHMARK, STRATEGY, SEED, "verdict", *_STAT_KEYS, "p_holm", "test", "reason",
           SELECTION_COST_USD, "random_selection_cost_usd", "extra_selection_usd", TRAIN_COST_USD,
           "total_cost_usd", FULL_TRAIN_COST_USD_PROJECTED, "exceeds_full"]


def _test(strategy_items: pd.DataFrame, random_items: pd.DataFrame, conservative: bool) -> dict:
    """One row's statistics, or {"reason": ...} when no test is possible."""
    if strategy_items.empty:
        return {"reason": "no per-item scores"}
    if not random_items.empty:
        wide = random_items.pivot(index=SEED, columns=ITEM, values=SCORE)
        mine = strategy_items.set_index(ITEM)[SCORE]
        common = [i for i in wide.columns if i in mine.index]
        if not common:
            return {"reason": "no item scored by both the strategy and the random models"}
        try:
            stats = compare_to_random(mine[common].to_numpy(float), wide[common].to_numpy(float),
                                      conservative=conservative)
        except ValueError as exc:
            return {"reason": str(exc)}
        return stats | {"test": "random seeds"}
    if OPPONENT_SEED in strategy_items.columns and strategy_items[OPPONENT_SEED].notna().any():
        rows = strategy_items[strategy_items[OPPONENT_SEED].notna()]
        try:
            stats = compare_head_to_head(rows[SCORE].to_numpy(float), rows[OPPONENT_SEED].to_numpy())
        except ValueError as exc:
            return {"reason": str(exc)}
        return stats | {"test": "head-to-head"}
    return {"reason": "no random baseline scored on this benchmark"}


def _key(values) -> tuple:
    """A hashable key in which every missing value is None (NaN != NaN would miss dict lookups)."""
    values = values if isinstance(values, tuple) else (values,)
    return tuple(None if pd.isna(v) else v for v in values)


def _costs(results: pd.DataFrame) -> pd.DataFrame:
    cells = results.drop_duplicates(list(CELL_COLUMNS))[[*CELL_COLUMNS, SELECTION_COST_USD, TRAIN_COST_USD,
                                                          FULL_TRAIN_COST_USD_PROJECTED]]
    rnd = (cells[cells[STRATEGY] == RANDOM].groupby(list(SETUP_COLUMNS), dropna=False)[SELECTION_COST_USD]
           .mean().rename("random_selection_cost_usd").reset_index())
    cells = cells.merge(rnd, on=list(SETUP_COLUMNS), how="left")
    cells["extra_selection_usd"] = cells[SELECTION_COST_USD] - cells["random_selection_cost_usd"]
    cells["total_cost_usd"] = cells[SELECTION_COST_USD] + cells[TRAIN_COST_USD]
    known = cells["total_cost_usd"].notna() & cells[FULL_TRAIN_COST_USD_PROJECTED].notna()
    cells["exceeds_full"] = pd.array(
        np.where(known, cells["total_cost_usd"] > cells[FULL_TRAIN_COST_USD_PROJECTED], False), dtype="boolean"
    )
    cells.loc[~known, "exceeds_full"] = pd.NA
    return cells


def verdict_table(
    results: pd.DataFrame,
    items: pd.DataFrame,
    *,
    alpha: float = 0.05,
    conservative: bool = False,
) -> pd.DataFrame:
    """Beats random / ties / loses for every strategy cell and benchmark, Holm-corrected over the table.

    Args:
        results: the results table (cells, benchmarks and the cost columns).
        items: the per-item table (cell columns + `benchmark`, `item`, `score`; `opponent_seed` for the
            head-to-head).
        alpha: family-wise error rate of the whole table.
        conservative: passed to `compare_to_random` (always t(seeds - 1)).

    Returns:
        One row per (dataset, budget, preset, lora, benchmark, strategy, seed) of every strategy other than
        `random` and `full`: `verdict`, `delta` (strategy - random mean, in the item score's units; for the
        head-to-head, win rate - 0.5), `ci_low`, `ci_high` (95 %, not multiplicity-adjusted), `p_value`
        (one-sided, better), `p_two_sided`, `p_holm`, `n_items`, `n_seeds`, `reference`, `test`, `reason`
        (why untested), and the cost columns `selection_cost_usd`, `random_selection_cost_usd` (mean over
        the setup's random seeds), `extra_selection_usd`, `train_cost_usd`, `total_cost_usd` (selection +
        training), `full_train_cost_usd_projected`, `exceeds_full` (nullable boolean: total > projected).

    >>> cell = dict(dataset="d", budget=4, preset="p", lora=True, benchmark="ifeval")
    >>> scores = {("random", 0): [1, 0, 0, 1, 0, 1], ("random", 1): [0, 1, 0, 1, 0, 1],
    ...           ("random", 2): [1, 1, 0, 0, 0, 1], ("longest", 0): [1, 1, 1, 1, 1, 1]}
    >>> items = pd.DataFrame([cell | dict(strategy=s, seed=k, item=i, score=v) for (s, k), vs in scores.items()
    ...                       for i, v in enumerate(vs)])
    >>> results = pd.DataFrame([cell | dict(strategy=s, seed=k, metric="acc", value=float(np.mean(vs)),
    ...                         selection_cost_usd=0.5 if s == "longest" else 0.0, train_cost_usd=1.0,
    ...                         full_train_cost_usd_projected=1.2) for (s, k), vs in scores.items()])
    >>> v = verdict_table(results, items)
    >>> v[["strategy", "verdict", "delta", "extra_selection_usd", "exceeds_full"]].round(3).to_dict("records")
    [{'strategy': 'longest', 'verdict': 'beats random', 'delta': 0.5, 'extra_selection_usd': 0.5, 'exceeds_full': True}]
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    check_results(results, extra=[SELECTION_COST_USD, TRAIN_COST_USD, FULL_TRAIN_COST_USD_PROJECTED])
    require_columns(items, ITEMS_COLUMNS, "items")
    dup = duplicated_keys(items, [*CELL_COLUMNS, BENCHMARK, ITEM])
    if len(dup):
        raise ValueError(f"items repeat item {dup.iloc[0][ITEM]!r} of one cell and benchmark {dup.iloc[0][BENCHMARK]!r}")
    keys = [*_GROUP, STRATEGY, SEED]
    judged = pd.concat([results[keys], items[keys]]).drop_duplicates()
    judged = judged[~judged[STRATEGY].isin([RANDOM, FULL])].sort_values(keys, kind="stable")
    items_by_cell = {_key(k): g for k, g in items.groupby(keys, dropna=False, sort=False)}
    randoms = items[items[STRATEGY] == RANDOM]
    randoms_by_group = {_key(k): g for k, g in randoms.groupby(_GROUP, dropna=False, sort=False)}
    empty = items.iloc[0:0]
    rows = []
    for record in judged.itertuples(index=False):
        row = dict(zip(keys, tuple(record), strict=True))
        key = _key(tuple(record))
        stats = _test(items_by_cell.get(key, empty), randoms_by_group.get(key[: len(_GROUP)], empty), conservative)
        rows.append(row | {"test": None, "reason": None} | stats)
    table = pd.DataFrame(rows, columns=[*keys, *_STAT_KEYS, "test", "reason"])
    table["p_holm"] = holm(table["p_two_sided"].to_numpy(float)) if len(table) else []
    significant = table["p_holm"] < alpha
    table["verdict"] = np.select(
        [table["p_holm"].isna(), significant & (table["delta"] > 0), significant & (table["delta"] < 0)],
        [UNTESTED, BEATS, LOSES], default=TIES,
    )
    table = table.merge(_costs(results), on=list(CELL_COLUMNS), how="left")
    return table[COLUMNS].reset_index(drop=True)

"""Cost vs performance and its Pareto front (Chasing Random, Figures 1, 6, 12 and 13).

The study's cost argument: a strategy's selection cost (scoring the pool with a model or an API judge) does
not shrink with the budget, so a selected subset can cost more than fine-tuning on everything, and random
selection is nearly free. Here each (strategy, budget) of a setup is one point at (selection + training
dollars, score); the Pareto front is the set of points that no other point beats on both axes at once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from selbench.analysis.tables import (
    BENCHMARK,
    BUDGET,
    DATASET,
    FULL,
    FULL_TRAIN_COST_USD_PROJECTED,
    LORA,
    METRIC,
    PRESET,
    SELECTION_COST_USD,
    STRATEGY,
    TRAIN_COST_USD,
    VALUE,
    check_results,
)

_GROUP = [DATASET, PRESET, LORA, BENCHMARK, METRIC]


def pareto_front(cost: Sequence[float] | np.ndarray, value: Sequence[float] | np.ndarray) -> np.ndarray:
    """True where no other point costs no more and scores no less, with one of the two strictly.

    Points with a NaN cost or value are never on the front (and dominate nothing). Two identical points
    are both on the front.

    >>> pareto_front([1, 2, 3, 2, float("nan")], [0.5, 0.7, 0.6, 0.7, 0.9]).tolist()
    [True, True, False, True, False]
    """
    c = np.asarray(cost, dtype=float)
    v = np.asarray(value, dtype=float)
    if c.shape != v.shape or c.ndim != 1:
        raise ValueError(f"cost and value must be 1-D of the same length; got {c.shape} and {v.shape}")
    ok = np.isfinite(c) & np.isfinite(v)
    cj, vj = c[ok][None, :], v[ok][None, :]
    ci, vi = c[ok][:, None], v[ok][:, None]
    dominated = ((cj <= ci) & (vj >= vi) & ((cj < ci) | (vj > vi))).any(axis=1)
    out = np.zeros(c.shape, dtype=bool)
    out[np.flatnonzero(ok)] = ~dominated
    return out


def cost_performance(results: pd.DataFrame) -> pd.DataFrame:
    """Dollars vs score for every (strategy, budget) of a dataset, preset and LoRA choice, per benchmark.

    Args:
        results: a results table with the cost columns.

    Returns:
        One row per (dataset, preset, lora, benchmark, metric, strategy, budget) (random and strict-random
        averaged over seeds, `full` at its own budget): `value`, `n_seeds`, `selection_cost_usd`,
        `train_cost_usd`, `total_cost_usd` (their sum; NaN when a cost is unknown, except that `full` has
        no selection cost), `full_train_cost_usd_projected`, and `pareto`
        (on the front of its dataset, preset, lora, benchmark and metric).

    >>> rows = [dict(dataset="d", budget=8, strategy=s, seed=0, preset="p", lora=True, benchmark="x", metric="m",
    ...              value=v, selection_cost_usd=sc, train_cost_usd=0.1, full_train_cost_usd_projected=2.0)
    ...         for s, v, sc in (("random", 0.5, 0.0), ("longest", 0.6, 0.01), ("alpagasus", 0.55, 3.0))]
    >>> cost_performance(pd.DataFrame(rows))[["strategy", "total_cost_usd", "pareto"]].round(3).to_dict("records")
    [{'strategy': 'alpagasus', 'total_cost_usd': 3.1, 'pareto': False}, {'strategy': 'longest', 'total_cost_usd': 0.11, 'pareto': True}, {'strategy': 'random', 'total_cost_usd': 0.1, 'pareto': True}]
    """
    check_results(results, extra=[SELECTION_COST_USD, TRAIN_COST_USD, FULL_TRAIN_COST_USD_PROJECTED])
    keys = [*_GROUP, STRATEGY, BUDGET]
    out = (
        results.groupby(keys, dropna=False)
        .agg(
            value=(VALUE, "mean"),
            n_seeds=(VALUE, "count"),
            selection_cost_usd=(SELECTION_COST_USD, "mean"),
            train_cost_usd=(TRAIN_COST_USD, "mean"),
            full_train_cost_usd_projected=(FULL_TRAIN_COST_USD_PROJECTED, "mean"),
        )
        .reset_index()
    )
    # The full dataset selects nothing; any other missing selection cost stays unknown (NaN, off the front).
    selection = out["selection_cost_usd"].mask(out[STRATEGY].eq(FULL) & out["selection_cost_usd"].isna(), 0.0)
    out["total_cost_usd"] = selection + out["train_cost_usd"]
    out["pareto"] = False
    for _, idx in out.groupby(_GROUP, dropna=False).groups.items():
        part = out.loc[idx]
        out.loc[idx, "pareto"] = pareto_front(part["total_cost_usd"].to_numpy(), part["value"].to_numpy())
    columns = [*keys, "value", "n_seeds", "selection_cost_usd", "train_cost_usd", "total_cost_usd",
               "full_train_cost_usd_projected", "pareto"]
    return out.sort_values(keys, kind="stable").reset_index(drop=True)[columns]

"""The study's views of a results table, each a DataFrame ready for one table or plot.

Diddee & Ippolito, "Chasing Random: Instruction Selection Strategies Fail to Generalize" (arXiv 2410.15225;
code: github.com/ippolito-cmu/ChasingRandom):

* `vs_random`: per benchmark, each strategy against the random baselines of its setup: their mean and sd
  and the minimum over seeds (the pessimistic random baseline the study plots beside the mean, its Figure 6);
* `mean_adjusted_win_rates`: the AlpacaEval head-to-head of each strategy's model against the random models
  (Figure 2): win rate - 50, so 0 means "as good as random" (selbench.evaluation.alpacaeval.head_to_head);
* `budget_trends`: each strategy's score across budgets beside random's mean and sd at each budget;
* `overlap_table`: pairwise overlap of selections (selbench.analysis.overlap) as a long table.

Correlations are in `correlations.py`, cost vs performance in `pareto.py`. Conventions: every metric is
higher-is-better; a strategy run with several seeds (strict-random) is averaged over its seeds
(`n_seeds` says how many); `full` is matched to every budget of its dataset as the `full_value` column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from selbench.analysis.overlap import overlap_matrix
from selbench.analysis.tables import (
    BENCHMARK,
    BUDGET,
    CELL_COLUMNS,
    DATASET,
    FULL,
    HEAD_TO_HEAD,
    LORA,
    MEAN_ADJUSTED_WIN_RATE,
    METRIC,
    PRESET,
    RANDOM,
    SEED,
    SETUP_COLUMNS,
    STRATEGY,
    VALUE,
    WIN_RATE,
    check_results,
)

_SETUP_BM = [*SETUP_COLUMNS, BENCHMARK, METRIC]
_DATASET_BM = [DATASET, PRESET, LORA, BENCHMARK, METRIC]


def _random_stats(results: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    rnd = results[results[STRATEGY] == RANDOM]
    return (
        rnd.groupby(keys, dropna=False)[VALUE]
        .agg(random_mean="mean", random_sd="std", random_min="min", random_max="max", n_random="count")
        .reset_index()
    )


def _full_values(results: pd.DataFrame) -> pd.DataFrame:
    full = results[results[STRATEGY] == FULL]
    return full.groupby(_DATASET_BM, dropna=False)[VALUE].mean().rename("full_value").reset_index()


def vs_random(results: pd.DataFrame) -> pd.DataFrame:
    """Each strategy vs the random baselines of its setup, per benchmark and metric (the study's Figure 6).

    Args:
        results: a results table (`selbench.analysis.tables`).

    Returns:
        One row per (dataset, budget, preset, lora, benchmark, metric, strategy), strategies other than
        `random` and `full`: `value` (mean over the strategy's seeds), `n_seeds`, the random baselines'
        `random_mean`, `random_sd` (sample sd over seeds), `random_min` (the pessimistic random: its worst
        seed), `random_max`, `n_random`; `delta_mean` = value - random_mean, `delta_min` = value -
        random_min (a strategy that loses even to the worst random seed has `delta_min` < 0); and
        `full_value`, the full-dataset model of the same dataset, preset and LoRA (NaN when absent).

    >>> rows = [dict(dataset="d", budget=8, strategy=s, seed=k, preset="p", lora=True, benchmark="ifeval",
    ...              metric="acc", value=v) for s, k, v in
    ...         [("random", 0, 0.4), ("random", 1, 0.5), ("random", 2, 0.6), ("longest", 0, 0.45), ("full", 0, 0.7)]]
    >>> v = vs_random(pd.DataFrame(rows))
    >>> v[["strategy", "value", "random_mean", "random_min", "delta_mean", "delta_min", "full_value"]].round(3).to_dict("records")
    [{'strategy': 'longest', 'value': 0.45, 'random_mean': 0.5, 'random_min': 0.4, 'delta_mean': -0.05, 'delta_min': 0.05, 'full_value': 0.7}]
    """
    check_results(results)
    strat = results[~results[STRATEGY].isin([RANDOM, FULL])]
    out = (
        strat.groupby([*_SETUP_BM, STRATEGY], dropna=False)[VALUE]
        .agg(value="mean", n_seeds="count")
        .reset_index()
    )
    out = out.merge(_random_stats(results, _SETUP_BM), on=_SETUP_BM, how="left")
    out["n_random"] = out["n_random"].fillna(0).astype(int)
    out["delta_mean"] = out["value"] - out["random_mean"]
    out["delta_min"] = out["value"] - out["random_min"]
    out = out.merge(_full_values(results), on=_DATASET_BM, how="left")
    return out.sort_values([*_SETUP_BM, STRATEGY], kind="stable").reset_index(drop=True)


def mean_adjusted_win_rates(results: pd.DataFrame, *, benchmark: str = HEAD_TO_HEAD) -> pd.DataFrame:
    """The head-to-head against the random models (the study's Figure 2), one row per cell.

    The study judges each strategy's answer against a random model's answer to the same instruction and
    plots the win rate minus 50 ("mean-adjusted"): above 0 the strategy's model is preferred to random.

    Args:
        results: a results table; the head-to-head rows have `benchmark` and metric `win_rate` and/or
            `mean_adjusted_win_rate` (percent), whichever is missing is derived from the other.
        benchmark: the head-to-head benchmark's name.

    Returns:
        The cell columns + `win_rate`, `mean_adjusted_win_rate`, sorted by setup and strategy.

    >>> rows = [dict(dataset="d", budget=8, strategy="longest", seed=0, preset="p", lora=True,
    ...              benchmark="alpacaeval", metric="win_rate", value=56.0)]
    >>> mean_adjusted_win_rates(pd.DataFrame(rows))[["strategy", "win_rate", "mean_adjusted_win_rate"]].to_dict("records")
    [{'strategy': 'longest', 'win_rate': 56.0, 'mean_adjusted_win_rate': 6.0}]
    """
    check_results(results)
    keys = list(CELL_COLUMNS)
    rows = results[(results[BENCHMARK] == benchmark) & results[METRIC].isin([WIN_RATE, MEAN_ADJUSTED_WIN_RATE])]
    cells = rows[keys].drop_duplicates().reset_index(drop=True)
    for metric in (WIN_RATE, MEAN_ADJUSTED_WIN_RATE):
        part = rows[rows[METRIC] == metric][[*keys, VALUE]].rename(columns={VALUE: metric})
        cells = cells.merge(part, on=keys, how="left")
    cells[WIN_RATE] = cells[WIN_RATE].fillna(cells[MEAN_ADJUSTED_WIN_RATE] + 50)
    cells[MEAN_ADJUSTED_WIN_RATE] = cells[MEAN_ADJUSTED_WIN_RATE].fillna(cells[WIN_RATE] - 50)
    order = [*SETUP_COLUMNS, STRATEGY, SEED]
    return cells.sort_values(order, kind="stable").reset_index(drop=True)


def budget_trends(results: pd.DataFrame) -> pd.DataFrame:
    """Scores across budgets: one line per strategy (random included, as its mean over seeds).

    Returns:
        One row per (dataset, preset, lora, benchmark, metric, strategy, budget), strategies other than
        `full`: `value` (mean over seeds), `sd` (sample sd over seeds, NaN for one seed), `n_seeds`,
        `random_mean` at that budget, `delta_mean` = value - random_mean (0 for random itself), and
        `full_value` (the full-dataset model: a horizontal line).

    >>> rows = [dict(dataset="d", budget=b, strategy=s, seed=k, preset="p", lora=True, benchmark="ifeval",
    ...              metric="acc", value=v) for b, s, k, v in
    ...         [(8, "random", 0, 0.4), (8, "random", 1, 0.6), (8, "longest", 0, 0.7), (16, "random", 0, 0.5),
    ...          (16, "longest", 0, 0.45)]]
    >>> t = budget_trends(pd.DataFrame(rows))
    >>> t[["strategy", "budget", "value", "delta_mean"]].round(3).to_dict("records")
    [{'strategy': 'longest', 'budget': 8, 'value': 0.7, 'delta_mean': 0.2}, {'strategy': 'longest', 'budget': 16, 'value': 0.45, 'delta_mean': -0.05}, {'strategy': 'random', 'budget': 8, 'value': 0.5, 'delta_mean': 0.0}, {'strategy': 'random', 'budget': 16, 'value': 0.5, 'delta_mean': 0.0}]
    """
    check_results(results)
    keys = [*_DATASET_BM, STRATEGY, BUDGET]
    rows = results[results[STRATEGY] != FULL]
    out = rows.groupby(keys, dropna=False)[VALUE].agg(value="mean", sd="std", n_seeds="count").reset_index()
    rnd = _random_stats(results, _SETUP_BM)[[*_SETUP_BM, "random_mean"]]
    out = out.merge(rnd, on=_SETUP_BM, how="left")
    out["delta_mean"] = out["value"] - out["random_mean"]
    out = out.merge(_full_values(results), on=_DATASET_BM, how="left")
    return out.sort_values([*_DATASET_BM, STRATEGY, BUDGET], kind="stable").reset_index(drop=True)


def overlap_table(selections: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Pairwise overlap of selections (name -> selected ids) as a long table for a heatmap.

    `overlap` = shared ids / size of `a` (the study's measure), `jaccard` = shared / union; see
    `selbench.analysis.overlap`.

    >>> overlap_table({"longest": ["1", "2", "3", "4"], "random-0": ["3", "4", "5", "6"]}).round(3).to_dict("records")[1]
    {'a': 'longest', 'b': 'random-0', 'overlap': 0.5, 'jaccard': 0.333}
    """
    overlap, jaccard = overlap_matrix(selections)
    rows = [
        {"a": a, "b": b, "overlap": overlap[a][b], "jaccard": jaccard[a][b]} for a in overlap for b in overlap[a]
    ]
    return pd.DataFrame(rows, columns=["a", "b", "overlap", "jaccard"])

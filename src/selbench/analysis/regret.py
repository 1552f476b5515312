"""Budget-transfer regret: what it costs to pick a strategy at a small budget and use it at a larger one.

Diddee & Ippolito observe that the best strategy changes with the budget (their example: Cherry is best at
5k examples but not at 10k), which matters because practitioners pilot at a small budget and scale up the
winner. The study states it; this module measures it: per (dataset, preset, lora, benchmark, metric), the
strategy best at the small budget, its rank and score at each larger budget, and the regret = score of the
best strategy at that budget - score of the one chosen small (0 when the choice transfers).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from selbench.analysis.tables import (
    BENCHMARK,
    BUDGET,
    DATASET,
    FULL,
    LORA,
    METRIC,
    PRESET,
    STRATEGY,
    VALUE,
    check_results,
)

_GROUP = [DATASET, PRESET, LORA, BENCHMARK, METRIC]
COLUMNS = [*_GROUP, "from_budget", "chosen", "chosen_score_from", BUDGET, "rank", "n_strategies", "score",
           "best_strategy", "best_score", "regret"]


def _best(scores: pd.Series) -> tuple[str, float]:
    """Highest score; ties go to the strategy name that sorts first (deterministic)."""
    top = scores.max()
    return sorted(map(str, scores.index[scores == top]))[0], float(top)


def budget_transfer_regret(
    results: pd.DataFrame,
    *,
    from_budget: int | None = None,
    exclude: Iterable[str] = (FULL,),
) -> pd.DataFrame:
    """Choose the best strategy at `from_budget`, then score that choice at every larger budget.

    Every strategy is a candidate, `random` and `strict-random` included (their mean over seeds): choosing
    random is a real option. A strategy run with several seeds counts with its mean.

    Args:
        results: a results table.
        from_budget: the budget where the choice is made (default: each group's smallest budget).
        exclude: strategies that are not candidates (default: `full`, which has no budget to choose at).

    Returns:
        One row per (dataset, preset, lora, benchmark, metric) and larger budget: `from_budget`, `chosen`
        (best at from_budget; ties to the first name), `chosen_score_from`, `budget`, `rank` of the chosen
        strategy there (1 = best, tied strategies share the better rank; NaN when it was not run there),
        `n_strategies` run there, `score`, `best_strategy` and `best_score` there, and `regret` = best_score
        - score (>= 0; in the metric's units). Empty when no group has a larger budget.

    >>> rows = [dict(dataset="d", budget=b, strategy=s, seed=0, preset="p", lora=True, benchmark="x", metric="m",
    ...              value=v) for b, s, v in [(5, "cherry", 0.6), (5, "longest", 0.5), (10, "cherry", 0.55),
    ...                                        (10, "longest", 0.65)]]
    >>> r = budget_transfer_regret(pd.DataFrame(rows))
    >>> r[["chosen", "budget", "rank", "score", "best_strategy", "regret"]].round(3).to_dict("records")
    [{'chosen': 'cherry', 'budget': 10, 'rank': 2.0, 'score': 0.55, 'best_strategy': 'longest', 'regret': 0.1}]
    """
    check_results(results)
    rows = results[~results[STRATEGY].isin(list(exclude))]
    scores = rows.groupby([*_GROUP, BUDGET, STRATEGY], dropna=False)[VALUE].mean().dropna()
    out = []
    for group, per_group in scores.groupby(level=list(range(len(_GROUP))), dropna=False, sort=True):
        by_budget = {b: s.droplevel(list(range(len(_GROUP) + 1))) for b, s in per_group.groupby(level=len(_GROUP))}
        budgets = sorted(by_budget)
        start = budgets[0] if from_budget is None else from_budget
        if start not in by_budget:
            continue
        chosen, chosen_from = _best(by_budget[start])
        for budget in (b for b in budgets if b > start):
            here = by_budget[budget]
            best, best_score = _best(here)
            score = float(here[chosen]) if chosen in here.index else np.nan
            rank = float((here > score).sum() + 1) if np.isfinite(score) else np.nan
            out.append(dict(zip(_GROUP, group, strict=True)) | {
                "from_budget": start, "chosen": chosen, "chosen_score_from": chosen_from, BUDGET: budget,
                "rank": rank, "n_strategies": len(here), "score": score, "best_strategy": best,
                "best_score": best_score, "regret": best_score - score,
            })
    return pd.DataFrame(out, columns=COLUMNS)

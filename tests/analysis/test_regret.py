"""Budget-transfer regret on hand-made results tables (the study's Cherry 5k -> 10k example, as a number)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from selbench.analysis.regret import budget_transfer_regret


def _rows(entries, **fixed):
    base = dict(dataset="alpaca", preset="set1", lora=False, benchmark="ifeval", metric="acc") | fixed
    return pd.DataFrame([base | dict(strategy=s, seed=k, budget=b, value=v) for s, k, b, v in entries])


def test_the_small_budget_winner_loses_points_later():
    t = _rows([
        ("cherry", 0, 1000, 0.62), ("longest", 0, 1000, 0.60), ("random", 0, 1000, 0.55), ("random", 1, 1000, 0.57),
        ("cherry", 0, 5000, 0.61), ("longest", 0, 5000, 0.66), ("random", 0, 5000, 0.63), ("random", 1, 5000, 0.65),
        ("cherry", 0, 10000, 0.70), ("longest", 0, 10000, 0.69), ("random", 0, 10000, 0.68), ("random", 1, 10000, 0.66),
    ])
    r = budget_transfer_regret(t).set_index("budget")
    assert list(r.index) == [5000, 10000]
    assert (r["chosen"] == "cherry").all() and (r["from_budget"] == 1000).all()
    assert (r["chosen_score_from"] == 0.62).all()
    # 5000: longest 0.66 > random mean 0.64 > cherry 0.61 -> cherry ranks 3rd of 3, loses 5 points
    assert r.loc[5000, "rank"] == 3 and r.loc[5000, "n_strategies"] == 3
    assert r.loc[5000, "best_strategy"] == "longest"
    assert r.loc[5000, "regret"] == pytest.approx(0.05)
    # 10000: cherry is best again, no regret
    assert r.loc[10000, "rank"] == 1 and r.loc[10000, "regret"] == pytest.approx(0.0)


def test_random_is_a_candidate_and_full_is_not():
    t = _rows([
        ("random", 0, 8, 0.50), ("random", 1, 8, 0.60), ("longest", 0, 8, 0.54), ("full", 0, 8, 0.9),
        ("random", 0, 16, 0.50), ("random", 1, 16, 0.52), ("longest", 0, 16, 0.56), ("full", 0, 16, 0.9),
    ])
    r = budget_transfer_regret(t).iloc[0]
    assert r["chosen"] == "random" and r["chosen_score_from"] == pytest.approx(0.55)
    assert r["best_strategy"] == "longest" and r["rank"] == 2 and r["n_strategies"] == 2
    assert r["regret"] == pytest.approx(0.05)


def test_ties_missing_strategies_and_from_budget():
    t = _rows([
        ("b", 0, 1, 0.5), ("a", 0, 1, 0.5),  # tie at the small budget: "a" sorts first
        ("a", 0, 2, 0.7), ("b", 0, 2, 0.7),  # tie at the larger budget: shared rank 1, no regret
        ("b", 0, 3, 0.9),                    # "a" was not run at 3
        ("a", 0, 4, 0.1), ("b", 0, 4, 0.3),
    ])
    r = budget_transfer_regret(t).set_index("budget")
    assert (r["chosen"] == "a").all()
    assert r.loc[2, "rank"] == 1 and r.loc[2, "regret"] == 0 and r.loc[2, "best_strategy"] == "a"
    assert math.isnan(r.loc[3, "rank"]) and math.isnan(r.loc[3, "regret"]) and r.loc[3, "best_strategy"] == "b"
    assert r.loc[4, "regret"] == pytest.approx(0.2)
    later = budget_transfer_regret(t, from_budget=3)
    assert list(later["budget"]) == [4] and later.iloc[0]["chosen"] == "b" and later.iloc[0]["regret"] == 0
    assert budget_transfer_regret(t, from_budget=99).empty


def test_groups_are_separate():
    t = pd.concat([
        _rows([("a", 0, 1, 0.9), ("b", 0, 1, 0.1), ("a", 0, 2, 0.1), ("b", 0, 2, 0.9)], benchmark="ifeval"),
        _rows([("a", 0, 1, 0.1), ("b", 0, 1, 0.9), ("a", 0, 2, 0.1), ("b", 0, 2, 0.9)], benchmark="llmbar"),
        _rows([("a", 0, 1, 0.9)], dataset="dolly"),  # one budget only: nothing to transfer to
    ])
    r = budget_transfer_regret(t).set_index("benchmark")
    assert len(r) == 2
    assert r.loc["ifeval", "chosen"] == "a" and r.loc["ifeval", "regret"] == pytest.approx(0.8)
    assert r.loc["llmbar", "chosen"] == "b" and r.loc["llmbar", "regret"] == 0

"""The study's views on small hand-made results tables whose answers are worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from selbench.analysis.correlations import (
    benchmark_correlations,
    lora_vs_full_correlation,
    lora_vs_full_pairs,
)
from selbench.analysis.overlap import overlap_matrix
from selbench.analysis.pareto import cost_performance, pareto_front
from selbench.analysis.views import budget_trends, mean_adjusted_win_rates, overlap_table, vs_random


def _rows(entries, **fixed):
    """Results rows from (strategy, seed, budget, benchmark, value) tuples plus fixed columns."""
    base = dict(dataset="alpaca", preset="set1", lora=False, metric="acc") | fixed
    return pd.DataFrame(
        [base | dict(strategy=s, seed=k, budget=b, benchmark=bm, value=v) for s, k, b, bm, v in entries]
    )


@pytest.fixture
def table():
    return _rows([
        ("random", 0, 1000, "ifeval", 0.40), ("random", 1, 1000, "ifeval", 0.50), ("random", 2, 1000, "ifeval", 0.60),
        ("longest", 0, 1000, "ifeval", 0.55),
        ("strict-random", 0, 1000, "ifeval", 0.45), ("strict-random", 1, 1000, "ifeval", 0.47),
        ("random", 0, 1000, "llmbar", 0.70), ("random", 1, 1000, "llmbar", 0.72),
        ("longest", 0, 1000, "llmbar", 0.60),
        ("longest", 0, 5000, "ifeval", 0.58),  # no random run at 5000
        ("full", 0, 52002, "ifeval", 0.65),
    ])


def test_vs_random_by_hand(table):
    v = vs_random(table).set_index(["budget", "benchmark", "strategy"])
    row = v.loc[(1000, "ifeval", "longest")]
    assert row["random_mean"] == pytest.approx(0.5)
    assert row["random_sd"] == pytest.approx(0.1)  # sample sd of 0.4, 0.5, 0.6
    assert row["random_min"] == pytest.approx(0.4) and row["random_max"] == pytest.approx(0.6)
    assert row["n_random"] == 3 and row["n_seeds"] == 1
    assert row["delta_mean"] == pytest.approx(0.05) and row["delta_min"] == pytest.approx(0.15)
    assert row["full_value"] == pytest.approx(0.65)  # full matched to the budget-1000 rows of its dataset
    strict = v.loc[(1000, "ifeval", "strict-random")]
    assert strict["value"] == pytest.approx(0.46) and strict["n_seeds"] == 2
    llmbar = v.loc[(1000, "llmbar", "longest")]
    assert llmbar["delta_min"] == pytest.approx(-0.10) and math.isnan(llmbar["full_value"])
    lonely = v.loc[(5000, "ifeval", "longest")]
    assert lonely["n_random"] == 0 and math.isnan(lonely["random_mean"])
    assert set(v.index.get_level_values("strategy")) == {"longest", "strict-random"}  # no random, no full rows


def test_views_refuse_repeated_rows(table):
    with pytest.raises(ValueError, match="repeat"):
        vs_random(pd.concat([table, table.iloc[:1]]))


def test_mean_adjusted_win_rates_from_either_metric():
    t = pd.concat([
        _rows([("longest", 0, 1000, "alpacaeval", 56.0)], metric="win_rate"),
        _rows([("cherry", 0, 1000, "alpacaeval", -4.0)], metric="mean_adjusted_win_rate"),
        _rows([("deita", 0, 1000, "alpacaeval", 61.0)], metric="win_rate"),
        _rows([("deita", 0, 1000, "alpacaeval", 11.0)], metric="mean_adjusted_win_rate"),
        _rows([("longest", 0, 1000, "ifeval", 0.5)]),
    ])
    w = mean_adjusted_win_rates(t).set_index("strategy")
    assert list(w.index) == ["cherry", "deita", "longest"]
    assert w.loc["longest", "mean_adjusted_win_rate"] == 6.0
    assert w.loc["cherry", "win_rate"] == 46.0
    assert w.loc["deita", "win_rate"] == 61.0 and w.loc["deita", "mean_adjusted_win_rate"] == 11.0


def test_budget_trends_by_hand(table):
    t = budget_trends(table)
    ife = t[t["benchmark"] == "ifeval"].set_index(["strategy", "budget"])
    assert ife.loc[("random", 1000), "value"] == pytest.approx(0.5)
    assert ife.loc[("random", 1000), "sd"] == pytest.approx(0.1)
    assert ife.loc[("random", 1000), "delta_mean"] == pytest.approx(0.0)
    assert ife.loc[("longest", 1000), "delta_mean"] == pytest.approx(0.05)
    assert math.isnan(ife.loc[("longest", 5000), "delta_mean"]) and math.isnan(ife.loc[("longest", 5000), "sd"])
    assert (ife["full_value"] == 0.65).all()
    assert "full" not in set(t["strategy"])
    assert list(t[(t["benchmark"] == "ifeval") & (t["strategy"] == "longest")]["budget"]) == [1000, 5000]


def test_overlap_table_is_the_matrix_in_long_form():
    sel = {"a": ["1", "2", "3", "4"], "b": ["3", "4", "5", "6"], "c": ["1", "9"]}
    t = overlap_table(sel)
    overlap, jaccard = overlap_matrix(sel)
    assert len(t) == 9
    for r in t.itertuples():
        assert r.overlap == overlap[r.a][r.b] and r.jaccard == jaccard[r.a][r.b]
    assert t.set_index(["a", "b"]).loc[("c", "a"), "overlap"] == 0.5


def _two_benchmarks(pairs):
    """Cells (strategy s, seed k) with scores on x and y, over two budgets."""
    entries = []
    for k, (budget, x, y) in enumerate(pairs):
        entries += [("s", k, budget, "x", x), ("s", k, budget, "y", y)]
    return _rows(entries)


def test_benchmark_correlations_agree_and_disagree():
    agree = benchmark_correlations(_two_benchmarks([(1, 1, 10), (1, 2, 20), (1, 3, 30), (1, 4, 40)]), n_boot=200)
    row = agree.iloc[0]
    assert (row["benchmark_a"], row["benchmark_b"], row["n"]) == ("x", "y", 4)
    assert row["spearman"] == 1.0 and row["kendall"] == 1.0
    assert row["spearman_low"] <= 1.0 and row["spearman_high"] == 1.0
    reverse = benchmark_correlations(_two_benchmarks([(1, 1, 40), (1, 2, 30), (1, 3, 20), (1, 4, 10)]), n_boot=0)
    assert reverse.iloc[0]["spearman"] == -1.0 and reverse.iloc[0]["kendall"] == -1.0


def test_against_random_removes_the_shared_budget_shift():
    # Budget 2 lifts every model on both benchmarks (raw scores agree), but within a budget the strategy
    # that gains on x loses on y.
    entries = []
    for budget, shift in ((1, 0.0), (2, 0.5)):
        for k in range(3):
            entries += [("random", k, budget, "x", shift + 0.10), ("random", k, budget, "y", shift + 0.10)]
        for s, gx, gy in (("a", 0.05, -0.04), ("b", 0.03, -0.02), ("c", -0.01, 0.03)):
            entries += [(s, 0, budget, "x", shift + 0.10 + gx), (s, 0, budget, "y", shift + 0.10 + gy)]
    t = _rows(entries)
    raw = benchmark_correlations(t, n_boot=0).iloc[0]
    gains = benchmark_correlations(t, against_random=True, n_boot=0).iloc[0]
    assert raw["spearman"] > 0.5
    assert gains["n"] == 6 and gains["spearman"] < -0.5


def test_lora_vs_full_pairs_and_correlation():
    entries = [("longest", 0, 1000, "ifeval", 0.5), ("cherry", 0, 1000, "ifeval", 0.4), ("random", 0, 1000, "ifeval", 0.3)]
    full = _rows(entries, preset="set1", lora=False)
    lora = _rows([(s, k, b, bm, v / 2) for s, k, b, bm, v in entries], preset="set4-lora", lora=True)
    pairs = lora_vs_full_pairs(pd.concat([full, lora]))
    assert len(pairs) == 3 and (pairs["value_lora"] == pairs["value_full"] / 2).all()
    assert set(pairs["preset_lora"]) == {"set4-lora"}
    corr = lora_vs_full_correlation(pd.concat([full, lora]), n_boot=0)
    assert corr.iloc[0]["spearman"] == 1.0 and corr.iloc[0]["n"] == 3
    other = _rows(entries, preset="set2", lora=False)
    with pytest.raises(ValueError, match="full_preset"):
        lora_vs_full_pairs(pd.concat([full, lora, other]))
    assert len(lora_vs_full_pairs(pd.concat([full, lora, other]), full_preset="set2")) == 3


def test_pareto_front_by_hand():
    cost = [0.0, 1.0, 1.0, 2.0, 5.0, np.nan]
    value = [0.5, 0.6, 0.55, 0.6, 0.9, 1.0]
    # 0: cheapest; 1: best at cost 1; 2: dominated by 1; 3: dominated by 1 (same value, dearer); 4: best; 5: NaN
    assert pareto_front(cost, value).tolist() == [True, True, False, False, True, False]
    assert pareto_front([], []).tolist() == []


def test_cost_performance_by_hand():
    t = pd.concat([
        _rows([("random", 0, 1000, "ifeval", 0.50), ("random", 1, 1000, "ifeval", 0.54)],
              selection_cost_usd=0.0, train_cost_usd=1.0, full_train_cost_usd_projected=50.0),
        _rows([("alpagasus", 0, 1000, "ifeval", 0.51)], selection_cost_usd=30.0, train_cost_usd=1.0,
              full_train_cost_usd_projected=50.0),
        _rows([("longest", 0, 1000, "ifeval", 0.56)], selection_cost_usd=0.01, train_cost_usd=1.0,
              full_train_cost_usd_projected=50.0),
        _rows([("full", 0, 52002, "ifeval", 0.60)], selection_cost_usd=np.nan, train_cost_usd=50.0,
              full_train_cost_usd_projected=50.0),
    ])
    c = cost_performance(t).set_index("strategy")
    assert c.loc["random", "value"] == pytest.approx(0.52) and c.loc["random", "n_seeds"] == 2
    assert c.loc["alpagasus", "total_cost_usd"] == pytest.approx(31.0)
    assert c.loc["full", "total_cost_usd"] == pytest.approx(50.0)  # no selection cost for the full dataset
    assert c["pareto"].to_dict() == {"alpagasus": False, "full": True, "longest": True, "random": True}


def test_seedless_cells_keep_their_rows():
    t = pd.concat([
        _rows([("longest", None, 1000, "alpacaeval", 58.0)], metric="win_rate"),
        _rows([("random", 0, 1000, "ifeval", 0.5), ("random", 1, 1000, "ifeval", 0.6), ("longest", None, 1000, "ifeval", 0.7)]),
    ])
    w = mean_adjusted_win_rates(t)
    assert len(w) == 1 and w.iloc[0]["mean_adjusted_win_rate"] == 8.0
    v = vs_random(t).set_index("benchmark")
    assert v.loc["ifeval", "delta_mean"] == pytest.approx(0.15) and v.loc["alpacaeval", "n_random"] == 0

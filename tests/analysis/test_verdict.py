"""The verdict table on hand-made results and items tables whose verdicts are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from selbench.analysis.stats import compare_to_random, holm
from selbench.analysis.verdict import verdict_table

SETUP = dict(dataset="alpaca", budget=1000, preset="set1", lora=False)
# Three random seeds, 20 items, every seed scores exactly 0.5: the seeds agree, item noise decides.
RANDOMS = {0: [1, 0] * 10, 1: [0, 1] * 10, 2: [1, 1, 0, 0] * 5}


def _ones(k, n=20):
    return [1] * k + [0] * (n - k)


def _items(cells, benchmark="ifeval", **setup):
    """Items rows from {(strategy, seed): scores}."""
    base = SETUP | setup | dict(benchmark=benchmark)
    return pd.DataFrame([base | dict(strategy=s, seed=k, item=f"q{i}", score=float(v))
                         for (s, k), scores in cells.items() for i, v in enumerate(scores)])


def _results(items, costs=None, extra=()):
    """One results row per cell and benchmark of `items` (value = mean score) plus `extra` rows."""
    keys = ["dataset", "budget", "preset", "lora", "strategy", "seed", "benchmark"]
    rows = items.groupby(keys, dropna=False)["score"].mean().rename("value").reset_index()
    rows = pd.concat([rows, pd.DataFrame(list(extra))], ignore_index=True).assign(metric="acc")
    costs = costs or {}
    for col, default in (("selection_cost_usd", 0.0), ("train_cost_usd", 1.0), ("full_train_cost_usd_projected", 10.0)):
        rows[col] = [costs.get((s, col), default) for s in rows["strategy"]]
    return rows


@pytest.fixture
def study():
    randoms = {("random", k): v for k, v in RANDOMS.items()}
    items = _items(randoms | {("good", 0): _ones(19), ("bad", 0): _ones(1), ("same", 0): _ones(10),
                              ("full", 0): _ones(20)})
    costs = {("good", "selection_cost_usd"): 2.0, ("good", "full_train_cost_usd_projected"): 2.5,
             ("bad", "selection_cost_usd"): 0.5, ("bad", "full_train_cost_usd_projected"): 2.5,
             ("same", "full_train_cost_usd_projected"): np.nan}
    results = _results(items, costs)
    seed_costs = {0: 0.0, 1: 0.1, 2: 0.2}
    rnd = results["strategy"] == "random"
    results.loc[rnd, "selection_cost_usd"] = results.loc[rnd, "seed"].map(seed_costs)
    return results, items


def test_beats_ties_loses(study):
    v = verdict_table(*study).set_index("strategy")
    assert set(v.index) == {"good", "bad", "same"}  # random and full are not judged
    assert v.loc["good", "verdict"] == "beats random" and v.loc["good", "delta"] == pytest.approx(0.45)
    assert v.loc["bad", "verdict"] == "loses" and v.loc["bad", "delta"] == pytest.approx(-0.45)
    assert v.loc["same", "verdict"] == "ties" and v.loc["same", "delta"] == pytest.approx(0.0)
    assert (v["test"] == "random seeds").all() and (v["n_seeds"] == 3).all() and (v["n_items"] == 20).all()
    # the p-values are compare_to_random's, adjusted by Holm over the three rows
    good = compare_to_random(_ones(19), list(RANDOMS.values()))
    assert v.loc["good", "p_value"] == pytest.approx(good["p_value"])
    assert v["p_holm"].to_numpy() == pytest.approx(holm(v["p_two_sided"].to_numpy()))


def test_costs(study):
    v = verdict_table(*study).set_index("strategy")
    assert v.loc["good", "random_selection_cost_usd"] == pytest.approx(0.1)  # mean of 0.0, 0.1, 0.2
    assert v.loc["good", "extra_selection_usd"] == pytest.approx(1.9)
    assert v.loc["good", "total_cost_usd"] == pytest.approx(3.0)
    assert bool(v.loc["good", "exceeds_full"]) is True  # 2.0 + 1.0 > 2.5
    assert bool(v.loc["bad", "exceeds_full"]) is False  # 0.5 + 1.0 <= 2.5
    assert pd.isna(v.loc["same", "exceeds_full"])  # no projection: unknown, not False


def test_holm_runs_over_the_whole_table():
    # A gain of 0.3 on 20 items: two-sided p = 0.033 alone (significant), 0.066 once two such rows share
    # the table (Holm), so the same strategy beats random alone and ties in the larger table.
    one = {("random", k): v for k, v in RANDOMS.items()} | {("cherry", 0): _ones(16)}
    alone = _items(one)
    assert compare_to_random(_ones(16), list(RANDOMS.values()))["p_two_sided"] == pytest.approx(0.0332, abs=1e-4)
    assert verdict_table(_results(alone), alone).iloc[0]["verdict"] == "beats random"
    both = pd.concat([alone, _items(one, benchmark="llmbar")], ignore_index=True)
    v = verdict_table(_results(both), both)
    assert list(v["verdict"]) == ["ties", "ties"]
    assert v["p_holm"].to_numpy() == pytest.approx([0.0664, 0.0664], abs=2e-4)


def test_untested_rows_say_why():
    one_seed = _items({("random", 0): RANDOMS[0], ("cherry", 0): _ones(16)}, benchmark="llmbar")
    no_items_row = SETUP | dict(strategy="cherry", seed=0, benchmark="openllm", value=0.4)
    random_row = SETUP | dict(strategy="random", seed=0, benchmark="openllm", value=0.4)
    v = verdict_table(_results(one_seed, extra=[no_items_row, random_row]), one_seed).set_index("benchmark")
    assert (v["verdict"] == "untested").all() and v["p_holm"].isna().all()
    assert "at least 2 random seeds" in v.loc["llmbar", "reason"]
    assert v.loc["openllm", "reason"] == "no per-item scores"


def test_head_to_head_rows():
    # AlpacaEval head-to-head: only the strategy is judged, against random seeds 0, 1, 2 in turn; it
    # wins 10 of the 12 instructions judged against each seed (instruction i faces seed i % 3).
    prefs = [0.0 if (i // 3) % 6 == 5 else 1.0 for i in range(36)]
    items = pd.DataFrame([SETUP | dict(strategy="longest", seed=0, benchmark="alpacaeval", item=i, score=p,
                                       opponent_seed=i % 3) for i, p in enumerate(prefs)])
    v = verdict_table(_results(items), items).iloc[0]
    assert v["test"] == "head-to-head" and v["n_seeds"] == 3 and v["n_items"] == 36
    assert v["delta"] == pytest.approx(5 / 6 - 0.5)
    assert v["verdict"] == "beats random"
    without = items.drop(columns="opponent_seed")
    assert verdict_table(_results(without), without).iloc[0]["verdict"] == "untested"


def test_strict_random_is_judged_and_bad_tables_refused(study):
    results, items = study
    strict = _items({("strict-random", 0): RANDOMS[1]})
    items2 = pd.concat([items, strict], ignore_index=True)
    v = verdict_table(_results(items2), items2).set_index("strategy")
    assert v.loc["strict-random", "verdict"] == "ties"
    with pytest.raises(ValueError, match="repeat item"):
        verdict_table(results, pd.concat([items, items.iloc[:1]]))
    with pytest.raises(ValueError, match="no column 'score'"):
        verdict_table(results, items.drop(columns="score"))
    with pytest.raises(ValueError, match="alpha"):
        verdict_table(results, items, alpha=1.5)


def test_a_strategy_without_a_seed_is_found():
    # Deterministic strategies may carry no seed (NaN in Parquet): NaN != NaN must not lose their items.
    items = _items({("random", k): v for k, v in RANDOMS.items()} | {("longest", None): _ones(19)})
    v = verdict_table(_results(items), items).iloc[0]
    assert v["strategy"] == "longest" and pd.isna(v["seed"])
    assert v["verdict"] == "beats random" and v["total_cost_usd"] == pytest.approx(1.0)

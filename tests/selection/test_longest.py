"""Longest: descending length, ties by the study's seeded shuffle."""

from __future__ import annotations

import numpy as np
import pytest

from selbench.errors import InputError
from selbench.selection.base import STRATEGIES, Pool
from selbench.selection.longest import LongestStrategy, select_longest


def test_longest_first_and_ties_by_lower_index():
    lengths = np.array([5, 9, 1, 9, 5, 0])
    assert select_longest(lengths, 4).tolist() == [1, 3, 0, 4]
    assert select_longest(lengths, 6).tolist() == [1, 3, 0, 4, 2, 5]


def test_ties_follow_the_studys_shuffle_then_stable_sort():
    """ChasingRandom's sampler: `Dataset.shuffle(seed)` then `.sort(length, reverse=True)`, then the first
    `budget`. Reproduced with 🤗 datasets itself on a table with many ties, for two seeds."""
    import datasets

    lengths = np.random.default_rng(3).integers(0, 6, 60)  # ~10 examples per length
    table = datasets.Dataset.from_dict({"i": list(range(60)), "target_len": lengths.tolist()})
    for seed in (0, 42):
        study = table.shuffle(seed=seed).sort("target_len", reverse=True).select(range(25))["i"]
        strategy = LongestStrategy()
        pool = Pool(n=60, scores={"length": {"length": lengths}})
        ours = strategy.select(pool, 25, np.random.default_rng(seed)).indices.tolist()
        assert ours == study
    other = LongestStrategy().select(pool, 25, np.random.default_rng(1)).indices.tolist()
    assert sorted(lengths[other]) == sorted(lengths[ours]) and other != ours  # same lengths, other tie picks


def test_prefix_property_across_budgets():
    lengths = np.random.default_rng(0).integers(0, 20, 500)  # many ties
    big = select_longest(lengths, 300)
    for budget in (1, 50, 299):
        assert select_longest(lengths, budget).tolist() == big[:budget].tolist()


def test_budget_out_of_range():
    with pytest.raises(ValueError, match="budget"):
        select_longest(np.array([1, 2]), 3)


def test_strategy_is_registered_and_reads_length_scores():
    strategy = STRATEGIES.get("longest")()
    assert strategy.score_requests() == {"length": ("length", {"unit": "chars"})}
    pool = Pool(n=3, scores={"length": {"length": np.array([2, 7, 4])}})
    assert strategy.select(pool, 2, np.random.default_rng(0)).indices.tolist() == [1, 2]


@pytest.mark.parametrize("kwargs, field", [({"unit": "words"}, "unit"), ({"unit": "tokens"}, "tokenizer"),
                                           ({"tokenizer": "x"}, "tokenizer")])
def test_bad_params_name_the_field(kwargs, field):
    with pytest.raises(InputError) as info:
        LongestStrategy(**kwargs)
    assert info.value.field == field

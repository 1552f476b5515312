"""Strict random: never an id any strategy picked; clear error when the complement is too small."""

from __future__ import annotations

import numpy as np
import pytest

from selbench.errors import InputError
from selbench.selection.base import Pool
from selbench.selection.strict_random import (
    ComplementTooSmall,
    StrictRandomStrategy,
    sample_strict_random,
    strict_random_pool,
)


def test_never_picks_an_excluded_id():
    rng = np.random.default_rng(0)
    n = 1000
    excluded = [rng.permutation(n)[:300], np.arange(250), rng.permutation(n)[:200]]
    union = set(np.concatenate(excluded).tolist())
    for seed in range(20):
        s = sample_strict_random(n, 200, excluded, 10_000, np.random.default_rng(seed))
        assert len(set(s.tolist())) == 200
        assert not union & set(s.tolist())


def test_reference_budget_excludes_leading_ids_only():
    ranked = np.array([9, 8, 7, 6, 5, 4])
    assert strict_random_pool(10, [ranked], 3).tolist() == [0, 1, 2, 3, 4, 5, 6]


def test_default_excludes_every_id_of_every_selection():
    ranked = np.array([9, 8, 7, 6, 5, 4])
    assert strict_random_pool(10, [ranked, np.array([0])]).tolist() == [1, 2, 3]
    picked = StrictRandomStrategy().select(Pool(n=10, against={"longest": ranked, "r": np.array([0])}), 3,
                                           np.random.default_rng(0))
    assert sorted(picked.indices.tolist()) == [1, 2, 3]


def test_complement_smaller_than_budget_is_an_error():
    with pytest.raises(ComplementTooSmall, match="only 4 of 10"):
        sample_strict_random(10, 5, [np.arange(6)], 6, np.random.default_rng(0))
    strategy = StrictRandomStrategy(reference_budget=6)
    with pytest.raises(InputError) as info:
        strategy.select(Pool(n=10, against={"longest": np.arange(6)}), 5, np.random.default_rng(0))
    assert info.value.field == "budget"


def test_uniform_over_the_complement():
    # Every allowed id is picked about equally often (chi-square against the uniform expectation).
    from scipy.stats import chisquare

    counts = np.zeros(20, dtype=np.int64)
    for seed in range(3000):
        counts[sample_strict_random(20, 4, [np.arange(10)], 10, np.random.default_rng(seed))] += 1
    assert counts[:10].sum() == 0
    assert chisquare(counts[10:]).pvalue > 0.01

"""Keeping the highest IFD: Cherry's and Superfiltering's rules, ties, and the fill-up when too few pass."""

from __future__ import annotations

import math

import numpy as np
import pytest

from selbench.selection.ifd_select import rank_by_ifd, select_by_ifd


def cherry_reference(ifd, budget):
    """`data_by_IFD.py`: (rate, i) pairs of rate <= 1, sorted, the last `budget`."""
    pairs = sorted((r, i) for i, r in enumerate(ifd) if not math.isnan(r) and not r > 1)
    return {i for _, i in pairs[-budget:]}


def superfilter_reference(ifd, budget):
    """`select_data.py`: values < 1, sorted descending (stable, NaN last), the first `budget`."""
    kept = [(i, r) for i, r in enumerate(ifd) if isinstance(r, float) and r < 1]
    kept = sorted(kept, key=lambda x: (0, 0) if math.isnan(x[1]) else (1, x[1]), reverse=True)
    return [i for i, _ in kept[:budget]]


@pytest.mark.parametrize("seed", range(5))
def test_rules_match_the_reference_scripts(seed):
    rng = np.random.default_rng(seed)
    ifd = np.round(rng.uniform(0.7, 1.2, 200), 2)  # rounded: many ties
    ifd[rng.choice(200, 20, replace=False)] = np.nan
    ifd[rng.choice(200, 3, replace=False)] = 1.0  # kept by Cherry (drops > 1), dropped by Superfiltering (< 1)
    budget = 40
    cherry = rank_by_ifd(ifd, rule="cherry")[:budget]
    assert set(cherry.tolist()) == cherry_reference(ifd.tolist(), budget)
    assert rank_by_ifd(ifd, rule="superfilter")[:budget].tolist() == superfilter_reference(ifd.tolist(), budget)
    assert (ifd == 1.0).any() and (ifd[rank_by_ifd(ifd, rule="cherry")] == 1.0).any()
    assert not (ifd[rank_by_ifd(ifd, rule="superfilter")] == 1.0).any()


def test_too_few_below_one_are_filled_and_reported():
    ifd = np.array([0.9, 1.5, np.nan, 1.1, 0.3, np.nan])
    indices, fallback, info = select_by_ifd(ifd, 5, np.random.default_rng(0))
    assert indices[:4].tolist() == [0, 4, 3, 1] and indices[4] in (2, 5)
    assert "only 2 examples" in fallback and info == {"n_scored": 4, "n_skipped": 2, "n_kept": 2, "rule": "cherry",
                                                      "max_ifd": 1.0}
    full, _, _ = select_by_ifd(ifd, 6, np.random.default_rng(0))
    assert sorted(full.tolist()) == list(range(6))
    assert select_by_ifd(ifd, 2, np.random.default_rng(0))[1] is None

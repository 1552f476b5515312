"""The overlap-constrained random baseline: exact conditional law, bound, fallback, determinism."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.stats import chi2_contingency, hypergeom

from selbench.selection.random import (
    max_overlap_count,
    overlap_count,
    sample_overlap_constrained,
    sample_uniform,
    truncated_hypergeom,
)

N, B, A_SIZE, BOUND = 20, 6, 6, 0.3  # k_max = 1: P(K <= 1) ~ 0.39 under uniform sampling
A = np.arange(0, 20, 20 // A_SIZE)[:A_SIZE]  # ids 0, 3, 6, ... spread over the pool
DRAWS = 4000


def _rejection(rng: np.random.Generator, against: list[np.ndarray], k_max: int) -> np.ndarray:
    """The study's procedure: resample a uniform subset until every overlap is within the bound."""
    while True:
        s = sample_uniform(N, B, rng)
        if all(overlap_count(s, a) <= k_max for a in against):
            return s


def _biased_no_overlap(rng: np.random.Generator, against: list[np.ndarray], k_max: int) -> np.ndarray:
    """A tempting but wrong baseline: sample only outside A (overlap always 0)."""
    outside = np.setdiff1d(np.arange(N), against[0])
    return rng.choice(outside, B, replace=False)


def _biased_complement(rng: np.random.Generator, against: list[np.ndarray], k_max: int) -> np.ndarray:
    """Right overlap law, but one non-A id is never picked: per-id inclusion must catch it."""
    s = sample_overlap_constrained(N, B, against, BOUND, rng).indices
    banned = int(np.setdiff1d(np.arange(N), against[0])[0])
    if banned in s:
        replacement = [i for i in np.setdiff1d(np.arange(N), np.concatenate([against[0], s])) if i != banned][0]
        s = np.where(s == banned, replacement, s)
    return s


def _ours(rng: np.random.Generator, against: list[np.ndarray], k_max: int) -> np.ndarray:
    sample = sample_overlap_constrained(N, B, against, BOUND, rng)
    assert sample.fallback is None
    return sample.indices


def _tables(sampler, against, seed) -> tuple[np.ndarray, np.ndarray]:
    """(counts of overlap-count patterns, per-id inclusion counts) over DRAWS draws."""
    rng = np.random.default_rng(seed)
    k_max = max_overlap_count(B, BOUND)
    patterns: dict[tuple[int, ...], int] = {}
    inclusion = np.zeros(N, dtype=np.int64)
    for _ in range(DRAWS):
        s = sampler(rng, against, k_max)
        key = tuple(overlap_count(s, a) for a in against)
        patterns[key] = patterns.get(key, 0) + 1
        inclusion[s] += 1
    all_keys = sorted(set(itertools.product(range(k_max + 1), repeat=len(against))))
    return np.array([patterns.get(k, 0) for k in all_keys]), inclusion


def _same_law(sampler, reference, against, seed) -> tuple[float, float]:
    """p-values of chi-square homogeneity tests on overlap patterns and on per-id inclusions."""
    pat_a, inc_a = _tables(sampler, against, seed)
    pat_b, inc_b = _tables(reference, against, seed + 1000)
    keep = (pat_a + pat_b) > 0
    p_pattern = chi2_contingency(np.stack([pat_a[keep], pat_b[keep]]))[1] if keep.sum() > 1 else 1.0
    p_inclusion = chi2_contingency(np.stack([inc_a, inc_b]))[1]
    return p_pattern, p_inclusion


def test_matches_brute_force_rejection_one_set():
    p_pattern, p_inclusion = _same_law(_ours, _rejection, [A], seed=1)
    assert p_pattern > 0.01 and p_inclusion > 0.01, (p_pattern, p_inclusion)


def test_matches_brute_force_rejection_two_sets():
    b = np.array([0, 1, 2, 4, 5, 7])  # shares id 0 with A, so the two bounds interact
    p_pattern, p_inclusion = _same_law(_ours, _rejection, [A, b], seed=2)
    assert p_pattern > 0.01 and p_inclusion > 0.01, (p_pattern, p_inclusion)


@pytest.mark.parametrize("biased", [_biased_no_overlap, _biased_complement])
def test_power_biased_samplers_fail_the_same_test(biased):
    p_pattern, p_inclusion = _same_law(biased, _rejection, [A], seed=3)
    assert min(p_pattern, p_inclusion) < 1e-4, (biased.__name__, p_pattern, p_inclusion)


def test_overlap_law_is_the_truncated_hypergeometric():
    ks, probs, log_mass = truncated_hypergeom(N, A_SIZE, B, 1)
    full = hypergeom.pmf([0, 1], N, A_SIZE, B)
    assert ks.tolist() == [0, 1]
    np.testing.assert_allclose(probs, full / full.sum())
    assert math.isclose(math.exp(log_mass), full.sum(), rel_tol=1e-9)


def test_bound_met_where_plain_resampling_would_never_finish():
    # Budget 1,500 of 3,000 against longest at 1,500: P(overlap <= 0.3) under uniform is ~1e-104.
    longest = np.arange(1500)
    _, _, log_mass = truncated_hypergeom(3000, 1500, 1500, 450)
    assert log_mass < math.log(1e-50)
    for seed in range(3):
        s = sample_overlap_constrained(3000, 1500, [longest], 0.3, np.random.default_rng(seed))
        assert s.fallback is None and s.tries == 1
        assert len(np.unique(s.indices)) == 1500
        assert overlap_count(s.indices, longest) <= 450
        assert s.overlaps[0] == overlap_count(s.indices, longest) / 1500


def test_infeasible_bound_falls_back_to_uniform_and_reports(caplog):
    # 2,500 of 3,000 against 1,500: at most 1,500 can come from outside, 1,750 would be needed.
    longest = np.arange(1500)
    s = sample_overlap_constrained(3000, 2500, [longest], 0.3, np.random.default_rng(0))
    assert s.fallback is not None and "infeasible" in s.fallback
    assert s.overlaps[0] == overlap_count(s.indices, longest) / 2500 > 0.3
    assert "fell back" in caplog.text
    # A uniform fallback, not one skewed toward the complement: overlap near its mean |A| / N = 0.5.
    assert abs(s.overlaps[0] - 0.5) < 0.03


def test_limit_reached_with_jointly_infeasible_sets_falls_back():
    # Each bound alone is feasible (10 ids outside each set), both together are not (7 + 7 > 10).
    a, b = np.arange(0, 10), np.arange(10, 20)
    s = sample_overlap_constrained(20, 10, [a, b], 0.3, np.random.default_rng(0), max_tries=50)
    assert s.fallback is not None and "50 tries" in s.fallback and s.tries == 50
    assert len(s.overlaps) == 2


def test_deterministic_given_seed_and_different_across_seeds():
    a = np.arange(100)
    runs = [sample_overlap_constrained(1000, 200, [a], 0.3, np.random.default_rng(7)).indices for _ in range(2)]
    assert runs[0].tolist() == runs[1].tolist()
    other = sample_overlap_constrained(1000, 200, [a], 0.3, np.random.default_rng(8)).indices
    assert other.tolist() != runs[0].tolist()


def test_no_against_is_plain_uniform():
    s = sample_overlap_constrained(50, 10, [], 0.3, np.random.default_rng(0))
    assert s.fallback is None and s.overlaps == [] and len(set(s.indices.tolist())) == 10


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_rejects_bad_bound(bad):
    with pytest.raises(ValueError, match="max_overlap"):
        sample_overlap_constrained(10, 5, [np.arange(3)], bad, np.random.default_rng(0))

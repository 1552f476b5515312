"""repr_filter (blocked, vectorized) picks exactly what DEITA's one-at-a-time loop picks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from selbench.selection.deita import repr_filter
from selbench.selection.repr_filter import normalize_rows, repr_filter_loop, visiting_order


def far_from_threshold(emb: np.ndarray, threshold: float, margin: float = 1e-5) -> bool:
    """No pair's cosine lies within float rounding of the threshold (two correct float32 implementations
    could then decide it differently), checked in float64."""
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-300)
    sims = unit @ unit.T
    return not (np.abs(sims - threshold) < margin).any()


def clustered(n: int, d: int, k: int, seed: int, n_levels: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """k tight clusters of different spreads, a few exact duplicates, scores with many ties."""
    rng = np.random.default_rng(seed)
    centers = normalize_rows(rng.standard_normal((k, d)))
    spread = rng.uniform(0.02, 0.3, k)
    label = rng.integers(0, k, n)
    emb = centers[label] + rng.standard_normal((n, d)) * spread[label, None]
    dup = rng.choice(n, n // 20, replace=False)
    emb[dup] = emb[rng.integers(0, n, len(dup))]  # exact duplicates: similarity 1
    scores = rng.integers(0, n_levels, n).astype(np.float64)  # ~n / n_levels examples per score
    return emb, scores


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.3, 0.6, 0.9])
def test_random_data_equals_the_loop(seed, threshold):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((400, 8))
    while not far_from_threshold(emb, threshold):  # redraw (deterministically) until no pair is ambiguous
        emb = rng.standard_normal((400, 8))
    scores = rng.standard_normal(400)
    expected = repr_filter_loop(emb, scores, 400, threshold)
    assert 0 < len(expected) < 400  # the filter actually rejects something
    for block in (1, 3, 64, 1024):
        assert repr_filter(emb, scores, 400, threshold, block_size=block) == expected
    for budget in (1, 5, len(expected) - 1):
        assert repr_filter(emb, scores, budget, threshold, block_size=16) == expected[:budget]


@pytest.mark.parametrize("seed", range(3))
def test_clustered_data_with_ties_equals_the_loop(seed):
    emb, scores = clustered(1500, 16, 60, seed)
    while not far_from_threshold(emb, 0.9):
        seed += 1000
        emb, scores = clustered(1500, 16, 60, seed)
    assert len(np.unique(scores)) == 5  # 300 examples per score: ties everywhere
    expected = repr_filter_loop(emb, scores, 600, 0.9)
    ranks = np.empty(len(scores), dtype=np.int64)
    ranks[visiting_order(scores)] = np.arange(len(scores))
    assert ranks[expected[-1]] + 1 > len(expected) + 100  # many candidates rejected on the way
    for block in (1, 50, 256, 4096):
        assert repr_filter(emb, scores, 600, 0.9, block_size=block) == expected
    assert repr_filter(emb, scores, 600, 0.9, use_faiss=True) == expected


def test_ties_visit_the_lower_index_first():
    emb = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0]])  # 0 and 1 are near duplicates
    assert repr_filter(emb, np.array([1.0, 1.0, 1.0]), 3, 0.9) == [0, 2]
    assert repr_filter(emb, np.array([1.0, 2.0, 1.0]), 3, 0.9) == [1, 2]


def test_threshold_is_strict_and_zero_rows_never_reject():
    emb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    scores = np.array([4.0, 3.0, 2.0, 1.0])
    assert repr_filter(emb, scores, 4, 1.0) == [0, 1, 2, 3]  # similarity 1 is not > 1
    assert repr_filter(emb, scores, 4, 0.99) == [0, 2, 3]
    assert repr_filter_loop(emb, scores, 4, 0.99) == [0, 2, 3]


def test_visiting_order_on_many_ties():
    scores = np.random.default_rng(0).integers(0, 3, 5000).astype(np.float64)
    scores[::97] = np.nan
    expected = sorted(range(5000), key=lambda i: (np.isnan(scores[i]), -np.nan_to_num(scores[i]), i))
    assert visiting_order(scores).tolist() == expected


def test_nan_scores_are_visited_last():
    emb = np.eye(3)
    assert repr_filter(emb, np.array([np.nan, 1.0, 2.0]), 3, 0.9) == [2, 1, 0]


def test_fewer_than_budget_when_the_pool_runs_out():
    emb = np.ones((10, 4))
    assert repr_filter(emb, np.arange(10.0), 5, 0.9) == [9]
    assert repr_filter(emb, np.arange(10.0), 0, 0.9) == []


def test_memory_mapped_float16_input(tmp_path):
    emb, scores = clustered(700, 12, 30, 7)
    stored = np.lib.format.open_memmap(tmp_path / "e.npy", mode="w+", dtype=np.float16, shape=emb.shape)
    stored[:] = emb
    stored.flush()
    mapped = np.load(tmp_path / "e.npy", mmap_mode="r")
    assume_far = far_from_threshold(np.asarray(mapped, dtype=np.float64), 0.9)
    assert assume_far
    assert repr_filter(mapped, scores, 300, 0.9, block_size=64) == repr_filter_loop(mapped, scores, 300, 0.9)


def test_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        repr_filter(np.ones(3), np.ones(3), 1)
    with pytest.raises(ValueError, match="scores"):
        repr_filter(np.ones((3, 2)), np.ones(4), 1)
    with pytest.raises(ValueError, match="budget"):
        repr_filter(np.ones((3, 2)), np.ones(3), -1)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 120),
    d=st.integers(1, 6),
    levels=st.integers(1, 4),
    threshold=st.sampled_from([-0.5, 0.0, 0.5, 0.8, 0.95]),
    block=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
    budget_frac=st.floats(0.0, 1.0),
)
def test_property_equals_the_loop(n, d, levels, threshold, block, seed, budget_frac):
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((max(1, n // 8), d))
    emb = centers[rng.integers(0, len(centers), n)] + 0.2 * rng.standard_normal((n, d))
    scores = rng.integers(0, levels, n).astype(np.float64)
    assume(far_from_threshold(emb, threshold))
    budget = int(round(budget_frac * n))
    assert repr_filter(emb, scores, budget, threshold, block_size=block) == repr_filter_loop(emb, scores, budget, threshold)


def test_memory_is_bounded_by_the_block_and_the_accepted_rows(tmp_path):
    """A memory-mapped pool is never copied whole (no n x d float32 copy, no n x n matrix): numpy's traced
    allocations stay far below the pool's size."""
    import tracemalloc

    n, d = 60_000, 256
    stored = np.lib.format.open_memmap(tmp_path / "e.npy", mode="w+", dtype=np.float16, shape=(n, d))
    rng = np.random.default_rng(0)
    for lo in range(0, n, 10_000):
        stored[lo : lo + 10_000] = rng.standard_normal((10_000, d))
    stored.flush()
    mapped = np.load(tmp_path / "e.npy", mmap_mode="r")
    scores = rng.standard_normal(n)
    tracemalloc.start()
    picked = repr_filter(mapped, scores, 2_000, 0.5)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(picked) == 2_000
    assert peak < n * d * 4 / 4  # a float32 copy of the pool would be 61 MB; we stay under a quarter of it

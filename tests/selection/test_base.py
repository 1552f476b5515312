"""Each strategy's random stream (`strategy_rng`): random baselines are independent of each other and of
other pools; longest keeps the study's raw seed stream."""

from __future__ import annotations

import numpy as np
from scipy.stats import hypergeom

from selbench.selection.base import STRATEGIES, strategy_rng
from selbench.selection.longest import select_longest, shuffled_rank
from selbench.selection.manifest import load_manifest, run_selection
from selbench.store import StepStore

SEEDS = range(40)


def _sum_pvalue(observed: int, pmfs: list[np.ndarray]) -> float:
    """Two-sided p-value of `observed` under the sum of independent counts with these pmfs (over 0, 1, ...):
    the probability of a total at most as likely as the observed one."""
    law = np.array([1.0])
    for pmf in pmfs:
        law = np.convolve(law, pmf)
    if observed >= len(law):
        return 0.0
    return float(law[law <= law[observed] * (1 + 1e-9)].sum())


def _positions(pool, manifest_path) -> np.ndarray:
    import pyarrow.parquet as pq

    ids = pq.read_table(pool / "data.parquet", columns=["id"]).column("id").to_pylist()
    index = {i: k for k, i in enumerate(ids)}
    return np.array([index[i] for i in load_manifest(manifest_path)["ids"]])


def test_random_and_strict_random_share_ids_only_by_chance(make_pool, tmp_path):
    """Issue 10 item 2: with one `default_rng(seed)` both baselines walked the same permutation (without
    --against they picked the very same ids). Over 40 seeds their overlaps must follow the hypergeometric law
    of two independent uniform draws."""
    n, budget = 200, 20
    pool = make_pool(tmp_path / "pool", n, seed=7)
    store = StepStore(tmp_path / "cache")
    shared = []
    for seed in SEEDS:
        a = run_selection(pool, "random", budget, tmp_path / "r.json", seed=seed, store=store).manifest["ids"]
        b = run_selection(pool, "strict-random", budget, tmp_path / "s.json", seed=seed, store=store).manifest["ids"]
        shared.append(len(set(a) & set(b)))
    pmf = hypergeom.pmf(np.arange(budget + 1), n, budget, budget)
    assert _sum_pvalue(sum(shared), [pmf] * len(SEEDS)) > 1e-3, shared


def test_baselines_against_longest_share_ids_only_by_chance(make_pool, tmp_path):
    """The issue's setting: random --against longest (overlap <= 0.3) and strict-random --against longest
    (from the complement). Given random's ids R, strict-random's overlap with them is
    Hypergeometric(complement size, |R outside longest|, budget) when the two streams are independent."""
    n, budget = 300, 30
    pool = make_pool(tmp_path / "pool", n, seed=8)
    store = StepStore(tmp_path / "cache")
    longest = tmp_path / "longest.json"
    run_selection(pool, "longest", budget, longest, store=store)
    taken = set(load_manifest(longest)["ids"])
    shared, pmfs = [], []
    for seed in SEEDS:
        a = run_selection(pool, "random", budget, tmp_path / "r.json", seed=seed, against=[longest],
                          store=store).manifest["ids"]
        b = run_selection(pool, "strict-random", budget, tmp_path / "s.json", seed=seed, against=[longest],
                          store=store).manifest["ids"]
        assert not taken & set(b)
        shared.append(len(set(a) & set(b)))
        outside = len(set(a) - taken)
        pmfs.append(hypergeom.pmf(np.arange(budget + 1), n - len(taken), outside, budget))
    assert _sum_pvalue(sum(shared), pmfs) > 1e-3, shared


def test_same_seed_on_another_pool_is_another_stream(make_pool, tmp_path):
    """The dataset's sha256 enters the stream: two pools of the same size do not get the same positions."""
    store = StepStore(tmp_path / "cache")
    picks = []
    for k in (1, 2):
        pool = make_pool(tmp_path / f"pool{k}", 500, seed=k)
        out = tmp_path / f"r{k}.json"
        run_selection(pool, "random", 50, out, seed=0, store=store)
        picks.append(_positions(pool, out))
    assert set(picks[0].tolist()) != set(picks[1].tolist())


def test_longest_keeps_the_studys_raw_seed_stream(make_pool, tmp_path):
    """Ties follow `Dataset.shuffle(seed)`, i.e. `np.random.default_rng(seed)` itself, end to end."""
    pool = make_pool(tmp_path / "pool", 400, seed=3)  # lengths in [0, 400): many ties at budget 150
    import pyarrow.parquet as pq

    lengths = np.array([len(o) for o in pq.read_table(pool / "data.parquet", columns=["output"])["output"].to_pylist()])
    for seed in (0, 42):
        out = tmp_path / f"longest-{seed}.json"
        run_selection(pool, "longest", 150, out, seed=seed, store=StepStore(tmp_path / "cache"))
        expected = select_longest(lengths, 150, shuffled_rank(len(lengths), np.random.default_rng(seed)))
        assert _positions(pool, out).tolist() == expected.tolist()


def test_streams_differ_by_strategy_seed_and_dataset():
    random, strict = STRATEGIES.get("random")(), STRATEGIES.get("strict-random")()
    sha_a, sha_b = "a" * 64, "b" * 64

    def draw(strategy, seed, sha):
        return tuple(strategy_rng(strategy, seed, sha).integers(0, 2**62, 4).tolist())

    draws = {draw(random, 5, sha_a), draw(strict, 5, sha_a), draw(random, 6, sha_a), draw(random, 5, sha_b)}
    assert len(draws) == 4
    assert draw(random, 5, sha_a) == draw(random, 5, sha_a)
    longest = STRATEGIES.get("longest")()
    assert draw(longest, 5, sha_a) == tuple(np.random.default_rng(5).integers(0, 2**62, 4).tolist())

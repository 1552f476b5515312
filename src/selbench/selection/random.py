"""Random baselines: uniform sampling, and the study's overlap-constrained random.

Diddee & Ippolito compare every strategy with a random subset of the same budget whose overlap with the
strategy's selection is at most 30%: they resample until the bound holds. That is the uniform distribution
over budget-sized subsets *conditioned* on the bound, and this module samples exactly that distribution
without blind looping:

* One `against` set A (|A| = a, pool N, budget B): the overlap count K of a uniform B-subset is
  Hypergeometric(N, a, B). Draw K from that law truncated to the allowed range
  [max(0, B - (N - a)), min(a, B, floor(max_overlap * B))], then K ids uniformly from A, B - K uniformly
  from the rest, and a uniform order. Given K, a uniform subset is uniform within A and within its
  complement, so this is the conditional law, even where plain resampling would practically never succeed
  (B = 1,500 of N = 3,000 against a 1,500-subset: P(K <= 450) ~ 1e-104).
* Several sets: the same conditional draw for the set whose bound is least likely to hold (the lead), then
  rejection on the others, at most `max_tries` times. Conditioning on one bound and rejecting on the rest
  leaves the law uniform on the intersection of all bounds.
* Infeasible bound (fewer than B - floor(max_overlap * B) examples outside a set) or limit reached: fall
  back to a uniform sample, log a warning and report why. The baseline is never pushed toward the examples a
  strategy rejected beyond what the bound itself implies.

Overlap = shared ids / budget, as in DESIGN.md's `selbench select overlap`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np

from selbench.errors import InputError
from selbench.selection.base import Pool, Selection

log = logging.getLogger(__name__)

DEFAULT_MAX_OVERLAP = 0.3
DEFAULT_MAX_TRIES = 2_000


class ConstrainedSample(NamedTuple):
    """indices: the sample, in order; overlaps: achieved overlap with each against set (shared / budget);
    fallback: None when the bound holds, else why a uniform sample was returned instead; tries: draws made."""

    indices: np.ndarray
    overlaps: list[float]
    fallback: str | None
    tries: int


def sample_uniform(n_pool: int, budget: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform `budget`-subset of range(n_pool), in uniform random order.

    >>> sorted(sample_uniform(5, 5, np.random.default_rng(0)).tolist())
    [0, 1, 2, 3, 4]
    """
    if not 0 <= budget <= n_pool:
        raise ValueError(f"budget {budget} outside [0, {n_pool}]")
    return rng.choice(n_pool, size=budget, replace=False).astype(np.int64)


def max_overlap_count(budget: int, max_overlap: float) -> int:
    """Largest allowed number of shared ids: floor(max_overlap * budget) (tolerant to float noise).

    >>> max_overlap_count(1500, 0.3), max_overlap_count(10, 0.3), max_overlap_count(6, 0.3)
    (450, 3, 1)
    """
    return int(math.floor(max_overlap * budget + 1e-9))


def overlap_count(indices: np.ndarray, against: np.ndarray) -> int:
    """Number of `indices` that are also in `against`."""
    return int(np.isin(indices, against, assume_unique=True).sum())


def truncated_hypergeom(n_pool: int, n_marked: int, budget: int, k_max: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Allowed overlap counts, their conditional probabilities, and log P(K <= k_max) under uniform sampling.

    K ~ Hypergeometric(population n_pool, n_marked marked, budget draws), restricted to K <= k_max.
    Returns empty arrays and -inf when no count is allowed.
    """
    from scipy.stats import hypergeom

    lo = max(0, budget - (n_pool - n_marked))
    hi = min(n_marked, budget, k_max)
    if lo > hi:
        return np.empty(0, dtype=np.int64), np.empty(0), -math.inf
    ks = np.arange(lo, hi + 1, dtype=np.int64)
    # Log space: the allowed tail can be ~1e-100 of the mass, far below where pmf values stay accurate.
    logp = hypergeom.logpmf(ks, n_pool, n_marked, budget)
    top = float(np.max(logp))
    weights = np.exp(logp - top)
    total = float(weights.sum())
    return ks, weights / total, top + math.log(total)


def sample_overlap_constrained(
    n_pool: int,
    budget: int,
    against: list[np.ndarray],
    max_overlap: float,
    rng: np.random.Generator,
    max_tries: int = DEFAULT_MAX_TRIES,
) -> ConstrainedSample:
    """A uniform `budget`-subset of range(n_pool) conditioned on overlapping each `against` set by at most
    `max_overlap` (shared / budget); falls back to a plain uniform subset where that is infeasible.

    Args:
        n_pool: pool size.
        budget: subset size.
        against: index arrays of the selections to stay away from.
        max_overlap: allowed overlap in [0, 1] (the study: 0.3).
        rng: the random generator (seeded by the caller).
        max_tries: conditional draws tried before falling back, with several against sets.

    Returns:
        `ConstrainedSample(indices, overlaps, fallback, tries)`.

    >>> s = sample_overlap_constrained(3000, 1500, [np.arange(1500)], 0.3, np.random.default_rng(0))
    >>> s.fallback is None and s.overlaps[0] <= 0.3
    True
    """
    if not 0.0 <= max_overlap <= 1.0:
        raise ValueError(f"max_overlap {max_overlap} outside [0, 1]")
    if not 0 <= budget <= n_pool:
        raise ValueError(f"budget {budget} outside [0, {n_pool}]")
    sets = [np.unique(np.asarray(a, dtype=np.int64)) for a in against]
    if not sets:
        return ConstrainedSample(sample_uniform(n_pool, budget, rng), [], None, 1)
    k_max = max_overlap_count(budget, max_overlap)

    def overlaps_of(indices: np.ndarray) -> list[int]:
        return [overlap_count(indices, s) for s in sets]

    def fall_back(reason: str, tries: int) -> ConstrainedSample:
        indices = sample_uniform(n_pool, budget, rng)
        counts = overlaps_of(indices)
        log.warning("overlap-constrained random: %s; fell back to uniform sampling (achieved overlaps %s)",
                    reason, ", ".join(f"{c / budget:.3f}" for c in counts))
        return ConstrainedSample(indices, [c / budget for c in counts], reason, tries)

    laws = [truncated_hypergeom(n_pool, len(s), budget, k_max) for s in sets]
    for i, (ks, _, _) in enumerate(laws):
        if len(ks) == 0:
            outside = n_pool - len(sets[i])
            return fall_back(
                f"infeasible: against set {i} ({len(sets[i])} ids) leaves {outside} ids outside it, fewer than "
                f"the {budget - k_max} needed for overlap <= {max_overlap} at budget {budget}", 0)
    # Condition on the bound least likely to hold by chance; reject on the others.
    lead = int(np.argmin([log_mass for _, _, log_mass in laws]))
    ks, probs, _ = laws[lead]
    marked = sets[lead]
    unmarked = np.setdiff1d(np.arange(n_pool, dtype=np.int64), marked, assume_unique=True)
    for tries in range(1, max_tries + 1):
        k = int(rng.choice(ks, p=probs))
        chosen = np.concatenate([rng.choice(marked, size=k, replace=False),
                                 rng.choice(unmarked, size=budget - k, replace=False)])
        indices = rng.permutation(chosen).astype(np.int64)
        counts = overlaps_of(indices)
        if all(c <= k_max for c in counts):
            return ConstrainedSample(indices, [c / budget for c in counts], None, tries)
    return fall_back(f"no sample met overlap <= {max_overlap} with all {len(sets)} sets in {max_tries} tries",
                     max_tries)


@dataclass(frozen=True)
class RandomStrategy:
    """Uniform random subset; with `against` selections, the study's overlap-constrained random.

    Args:
        max_overlap: allowed overlap (shared / budget) with each against selection (the study: 0.3).
        max_tries: conditional draws before falling back, with several against selections.
    """

    max_overlap: float = DEFAULT_MAX_OVERLAP
    max_tries: int = DEFAULT_MAX_TRIES

    name: ClassVar[str] = "random"
    VERSION: ClassVar[int] = 2  # 2: a random stream of its own (strategy_rng), not the raw seed's
    uses_against: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not 0.0 <= self.max_overlap <= 1.0:
            raise InputError(f"got {self.max_overlap}, allowed: a fraction in [0, 1]", field="max_overlap")
        if self.max_tries < 1:
            raise InputError(f"got {self.max_tries}, allowed: a positive integer", field="max_tries")

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        sample = sample_overlap_constrained(pool.n, budget, list(pool.against.values()), self.max_overlap, rng,
                                            self.max_tries)
        return Selection(sample.indices, fallback=sample.fallback, info={"tries": sample.tries})

"""Strict random: a uniform sample from the examples that no strategy selected.

Diddee & Ippolito's stricter baseline draws only from the complement of the union of all strategies'
selections at a reference budget (10,000 in the study), so it shares no example with any of them.

How the reference budget is applied: from each `against` selection the first `reference_budget` ids (in
its selection order) are excluded. For ranking strategies (longest, score-based) those are exactly the
selection at the reference budget; for a random selection they are a uniform subset of it. A selection
smaller than the reference budget is excluded whole, and the manifest records its size (the caller decides
whether that is an error; the CLI refuses it unless it is the whole pool).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.selection.base import Pool, Selection

DEFAULT_REFERENCE_BUDGET = 10_000


class ComplementTooSmall(ValueError):
    """Fewer examples are left outside the excluded selections than the budget asks for."""


def strict_random_pool(n_pool: int, excluded: list[np.ndarray], reference_budget: int) -> np.ndarray:
    """Sorted pool indices outside the union of each excluded selection's first `reference_budget` ids.

    >>> strict_random_pool(6, [np.array([5, 0, 3]), np.array([1])], 2).tolist()
    [2, 3, 4]
    """
    taken = np.zeros(n_pool, dtype=bool)
    for selection in excluded:
        taken[np.asarray(selection, dtype=np.int64)[:reference_budget]] = True
    return np.flatnonzero(~taken).astype(np.int64)


def sample_strict_random(
    n_pool: int, budget: int, excluded: list[np.ndarray], reference_budget: int, rng: np.random.Generator
) -> np.ndarray:
    """A uniform `budget`-subset (uniform order) of `strict_random_pool(...)`.

    Raises:
        ComplementTooSmall: when the pool outside the excluded selections is smaller than `budget`.
    """
    candidates = strict_random_pool(n_pool, excluded, reference_budget)
    if len(candidates) < budget:
        raise ComplementTooSmall(
            f"only {len(candidates)} of {n_pool} examples lie outside the {len(excluded)} excluded selection(s) "
            f"at reference budget {reference_budget}; budget {budget} cannot be met (lower --budget or "
            f"--reference-budget)")
    return rng.choice(candidates, size=budget, replace=False).astype(np.int64)


@dataclass(frozen=True)
class StrictRandomStrategy:
    """Args:
    reference_budget: how many leading ids of each against selection are excluded (the study: 10,000).
    """

    reference_budget: int = DEFAULT_REFERENCE_BUDGET

    name: ClassVar[str] = "strict-random"
    VERSION: ClassVar[int] = 2  # 2: a random stream of its own (strategy_rng), not the raw seed's
    uses_against: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.reference_budget < 1:
            raise InputError(f"got {self.reference_budget}, allowed: a positive integer", field="reference_budget")

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        try:
            indices = sample_strict_random(pool.n, budget, list(pool.against.values()), self.reference_budget, rng)
        except ComplementTooSmall as exc:
            raise InputError(str(exc), field="budget") from exc
        return Selection(indices)

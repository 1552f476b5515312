"""Strict random: a uniform sample from the examples that no strategy selected.

Diddee & Ippolito's stricter baseline draws only from the complement of the union of all strategies'
selections at a reference budget (10,000 in the study), so it shares no example with any of them.

By default every id of every `against` selection is excluded (DESIGN.md: it samples from the examples none
of the `--against` selections picked). With `reference_budget=K` only the first K ids of each selection (in
its selection order) are excluded: the study's "picked at 10k" rule applied to selections made at a larger
budget. For ranking strategies (longest, score-based) those are exactly the selection at budget K; for a
random selection they are a uniform subset of it. A selection smaller than K is excluded whole here;
`run_selection` refuses it (the caller said the selections were made at K or more).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.selection.base import Pool, Selection

STUDY_REFERENCE_BUDGET = 10_000  # what the study's grid passes explicitly


class ComplementTooSmall(ValueError):
    """Fewer examples are left outside the excluded selections than the budget asks for."""


def strict_random_pool(n_pool: int, excluded: list[np.ndarray], reference_budget: int | None = None) -> np.ndarray:
    """Sorted pool indices outside the union of the excluded selections (of each one's first
    `reference_budget` ids when given).

    >>> strict_random_pool(6, [np.array([5, 0, 3]), np.array([1])], 2).tolist()
    [2, 3, 4]
    >>> strict_random_pool(6, [np.array([5, 0, 3]), np.array([1])]).tolist()
    [2, 4]
    """
    taken = np.zeros(n_pool, dtype=bool)
    for selection in excluded:
        taken[np.asarray(selection, dtype=np.int64)[:reference_budget]] = True
    return np.flatnonzero(~taken).astype(np.int64)


def sample_strict_random(
    n_pool: int, budget: int, excluded: list[np.ndarray], reference_budget: int | None, rng: np.random.Generator
) -> np.ndarray:
    """A uniform `budget`-subset (uniform order) of `strict_random_pool(...)`.

    Raises:
        ComplementTooSmall: when the pool outside the excluded selections is smaller than `budget`.
    """
    candidates = strict_random_pool(n_pool, excluded, reference_budget)
    if len(candidates) < budget:
        at = "" if reference_budget is None else f" at reference budget {reference_budget}"
        lower = "--budget" if reference_budget is None else "--budget or --reference-budget"
        raise ComplementTooSmall(
            f"only {len(candidates)} of {n_pool} examples lie outside the {len(excluded)} excluded selection(s)"
            f"{at}; budget {budget} cannot be met (lower {lower})")
    return rng.choice(candidates, size=budget, replace=False).astype(np.int64)


@dataclass(frozen=True)
class StrictRandomStrategy:
    """Args:
    reference_budget: exclude only this many leading ids of each against selection (the study's grid: 10,000);
        None (default): exclude every id of every against selection.
    """

    reference_budget: int | None = None

    name: ClassVar[str] = "strict-random"
    VERSION: ClassVar[int] = 2  # 2: a random stream of its own (strategy_rng), not the raw seed's
    uses_against: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.reference_budget is not None and self.reference_budget < 1:
            raise InputError(f"got {self.reference_budget}, allowed: a positive integer", field="reference_budget")

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        try:
            indices = sample_strict_random(pool.n, budget, list(pool.against.values()), self.reference_budget, rng)
        except ComplementTooSmall as exc:
            raise InputError(str(exc), field="budget") from exc
        return Selection(indices)

"""The whole pool: the study's "full dataset" reference point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.selection.base import Pool, Selection


def select_full(n_pool: int) -> np.ndarray:
    """Every index, in dataset order.

    >>> select_full(3).tolist()
    [0, 1, 2]
    """
    return np.arange(n_pool, dtype=np.int64)


@dataclass(frozen=True)
class FullStrategy:
    """Select every example; the budget must equal the pool size (the CLI fills it in when omitted)."""

    name: ClassVar[str] = "full"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False
    needs_budget: ClassVar[bool] = False  # the budget is the pool size

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        if budget != pool.n:
            raise InputError(f"got {budget}: strategy 'full' selects the whole pool of {pool.n}", field="budget")
        return Selection(select_full(pool.n))

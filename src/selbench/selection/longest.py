"""Longest responses first (Zhao et al., 2024, "Long Is More for Alignment", https://arxiv.org/abs/2402.04833).

Diddee & Ippolito rank by the response's length in characters (default); `unit="tokens"` ranks by tokens of
a given tokenizer. Ties are broken as the study's `sampler.py` breaks them: it shuffles the dataset with the
seed (🤗 `Dataset.shuffle(seed)`, i.e. `np.random.default_rng(seed).permutation`) and then sorts by length,
descending, with a stable sort, so equal lengths keep their shuffled order. With the same seed (the study's
default is 42) and the same source row order, the same examples are chosen. That is why this strategy
takes the study's raw seed stream (`study_seed_stream`) where the random baselines get streams of their own
(`selbench.selection.base.strategy_rng`): the shuffle must be `np.random.default_rng(seed)` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.scoring.length import UNITS
from selbench.selection.base import Pool, Selection


def select_longest(lengths: np.ndarray, budget: int, tie_rank: np.ndarray | None = None) -> np.ndarray:
    """Indices of the `budget` longest examples, longest first; ties by `tie_rank` (lower first), else by index.

    >>> select_longest(np.array([3, 7, 7, 1]), 3).tolist()
    [1, 2, 0]
    >>> select_longest(np.array([3, 7, 7, 1]), 3, tie_rank=np.array([0, 3, 1, 2])).tolist()
    [2, 1, 0]
    """
    lengths = np.asarray(lengths)
    if not 0 <= budget <= len(lengths):
        raise ValueError(f"budget {budget} outside [0, {len(lengths)}]")
    negated = -lengths.astype(np.int64, copy=False)
    if tie_rank is None:
        order = np.argsort(negated, kind="stable")  # a stable sort keeps equal lengths in index order
    else:
        order = np.lexsort((np.asarray(tie_rank), negated))  # last key first: length, then the tie rank
    return order[:budget].astype(np.int64, copy=False)


def shuffled_rank(n: int, rng: np.random.Generator) -> np.ndarray:
    """Each example's position after `Dataset.shuffle` with this generator (`rng.permutation(n)` puts example
    `perm[j]` at position j).

    >>> shuffled_rank(4, np.random.default_rng(0)).tolist() == np.argsort(np.random.default_rng(0).permutation(4)).tolist()
    True
    """
    perm = rng.permutation(n)
    rank = np.empty(n, dtype=np.int64)
    rank[perm] = np.arange(n)
    return rank


@dataclass(frozen=True)
class LongestStrategy:
    """Args:
    unit: "chars" (the study's) or "tokens".
    tokenizer: tokenizer folder or model spec, for unit="tokens".
    """

    unit: str = "chars"
    tokenizer: str | None = None

    name: ClassVar[str] = "longest"
    VERSION: ClassVar[int] = 2  # 2: ties broken by the seeded shuffle, as the study's sampler
    uses_against: ClassVar[bool] = False
    study_seed_stream: ClassVar[bool] = True  # ties follow the study's Dataset.shuffle(seed) exactly

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise InputError(f"got {self.unit!r}, allowed: {', '.join(UNITS)}", field="unit")
        if self.unit == "tokens" and not self.tokenizer:
            raise InputError("unit 'tokens' needs --tokenizer", field="tokenizer")
        if self.unit == "chars" and self.tokenizer:
            raise InputError("--tokenizer is only used with --unit tokens", field="tokenizer")

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        options: dict[str, Any] = {"unit": self.unit}
        if self.tokenizer:
            options["tokenizer"] = self.tokenizer
        return {"length": ("length", options)}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        lengths = pool.scores["length"]["length"]
        return Selection(select_longest(lengths, budget, shuffled_rank(len(lengths), rng)))

"""Longest responses first (Zhao et al., 2024, "Long Is More for Alignment", https://arxiv.org/abs/2402.04833).

Diddee & Ippolito rank by the response's length in characters (default); `unit="tokens"` ranks by tokens of
a given tokenizer. Ties are broken by dataset order (lower index first): the prepared dataset's row order is
part of its sha256, so the choice is reproducible; ids are not used because they are content hashes with no
meaning as an order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.scoring.length import UNITS
from selbench.selection.base import Pool, Selection


def select_longest(lengths: np.ndarray, budget: int) -> np.ndarray:
    """Indices of the `budget` longest examples, longest first, ties by lower index.

    >>> select_longest(np.array([3, 7, 7, 1]), 3).tolist()
    [1, 2, 0]
    """
    lengths = np.asarray(lengths)
    if not 0 <= budget <= len(lengths):
        raise ValueError(f"budget {budget} outside [0, {len(lengths)}]")
    # A stable sort on the negated length keeps equal lengths in index order.
    order = np.argsort(-lengths.astype(np.int64, copy=False), kind="stable")
    return order[:budget].astype(np.int64, copy=False)


@dataclass(frozen=True)
class LongestStrategy:
    """Args:
    unit: "chars" (the study's) or "tokens".
    tokenizer: tokenizer folder or model spec, for unit="tokens".
    """

    unit: str = "chars"
    tokenizer: str | None = None

    name: ClassVar[str] = "longest"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False

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
        return Selection(select_longest(pool.scores["length"]["length"], budget))

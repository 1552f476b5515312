"""RDS+: representation-based selection toward a target set (beyond the study).

Ivison et al. (2025), "Large-Scale Data Selection for Instruction Tuning" (https://arxiv.org/abs/2503.01807):
the strongest method at scale in their comparison. Each pool example gets its cosine similarity to each
target example, from position-weighted mean-pooled last-layer hidden states of the base model (the `rds`
scorer, `selbench.scoring.rds`, which documents the weighting). Selection is their round-robin
(hamishivi/automated-instruction-selection `minimal_multitask/get_top_influences.py`,
`--selection_method max`): in each round every target example, in file order, takes its most similar pool
example not taken by it before; a pool example already selected is not added again (that target's turn is
spent), until the budget is met. Ties in similarity go to the lower pool index (their stable sort).

`round_robin_select` computes that sequence without replaying it: target t's pick in round r is its r-th best
example whatever happened before, so the selection is the first `budget` distinct entries of the round-major
sequence of per-target rankings; only the top `rounds` of each ranking are formed, doubling the rounds when
duplicates leave too few.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.selection.base import Pool, Selection


def top_ranked(sims: np.ndarray, k: int) -> np.ndarray:
    """`[k, m]`: row r holds each column's r-th largest entry's index (ties: lower index; NaN last).

    >>> top_ranked(np.array([[0.1, 0.9], [0.5, 0.9], [0.5, 0.2]]), 2).tolist()
    [[1, 0], [2, 1]]
    """
    sims = np.asarray(sims, dtype=np.float64)
    n, m = sims.shape
    k = min(k, n)
    out = np.empty((k, m), dtype=np.int64)
    for t in range(m):
        neg = -np.nan_to_num(sims[:, t], nan=-np.inf)
        if k < n:
            bound = np.partition(neg, k - 1)[k - 1]
            candidates = np.flatnonzero(neg <= bound)  # every tie at the boundary, to rank them by index
        else:
            candidates = np.arange(n)
        out[:, t] = candidates[np.lexsort((candidates, neg[candidates]))][:k]
    return out


def round_robin_select(sims: np.ndarray, budget: int) -> np.ndarray:
    """RDS's round-robin over target examples on an `[n, m]` similarity matrix; pool indices in pick order.

    >>> sims = np.array([[0.9, 0.8], [0.7, 0.1], [0.1, 0.7], [0.2, 0.3]])
    >>> round_robin_select(sims, 3).tolist()  # round 1: 0, 0 (taken); round 2: 1, 2
    [0, 1, 2]
    """
    n, m = np.shape(sims)
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} outside [0, {n}]")
    if budget == 0:
        return np.empty(0, dtype=np.int64)
    rounds = -(-budget // m)
    while True:
        rounds = min(rounds, n)
        sequence = top_ranked(sims, rounds).ravel()  # round-major: round 0 for every target, then round 1...
        _, first = np.unique(sequence, return_index=True)
        if len(first) >= budget:
            return sequence[np.sort(first)[:budget]]
        assert rounds < n, "a full ranking holds every example"
        rounds *= 2


@dataclass(frozen=True)
class RdsStrategy:
    """RDS+ (Ivison et al., 2025): round-robin over a target set by embedding similarity.

    Args:
        target: JSON or JSONL file of target instructions or examples (what the model should get good at), or a packaged set's name (instruction-following).
        model: the base model to embed with (asset, folder or hf://), e.g. hf://meta-llama/Llama-2-7b-hf.
        max_length: tokens per example (RDS+: 2048).
        batch_size: examples per forward pass.
    """

    target: str
    model: str
    max_length: int = 2048
    batch_size: int = 8

    name: ClassVar[str] = "rds"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False

    def __post_init__(self) -> None:
        from selbench.scoring.rds import RdsScorer

        RdsScorer(**self._options())  # checks the options and the target file now, naming the field

    def _options(self) -> dict[str, Any]:
        return {"target": self.target, "model": self.model, "max_length": self.max_length,
                "batch_size": self.batch_size}

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {"rds": ("rds", self._options())}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        sims = pool.scores["rds"]["rds_sim"]
        return Selection(round_robin_select(sims, budget), info={"n_targets": int(np.shape(sims)[1])})

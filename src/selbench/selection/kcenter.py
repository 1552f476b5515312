"""k-center greedy: coverage of the embedding space (beyond the study).

Sener & Savarese (2018), "Active Learning for Convolutional Neural Networks: A Core-Set Approach"
(https://arxiv.org/abs/1708.00489), Algorithm 1 (k-Center-Greedy): start from one center, then repeatedly add
the example farthest from its nearest chosen center, which 2-approximates the minimax-radius cover. There is
no labelled seed set here, so the first center is drawn with the seeded generator (the only randomness).

Distances: `metric="cosine"` (default) is 1 - cosine similarity, i.e. Euclidean distance between unit
vectors up to a monotone map, so the picks equal Euclidean k-center on normalized embeddings;
`"euclidean"` uses the raw vectors. Every pick costs one pass over the pool, done in row blocks in float32
(a memory-mapped `[n, d]` pool is never copied whole); ties go to the lower index; once every example is at
distance 0 of a center (exact duplicates), the rest follow in index order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.selection.base import Pool, Selection

METRICS = ("cosine", "euclidean")
_BLOCK = 65536


def _row_norms(embeddings: np.ndarray, block: int) -> np.ndarray:
    norms = np.empty(len(embeddings), dtype=np.float32)
    for lo in range(0, len(embeddings), block):
        norms[lo : lo + block] = np.linalg.norm(np.asarray(embeddings[lo : lo + block], dtype=np.float32), axis=1)
    return norms


def kcenter_greedy(embeddings: np.ndarray, budget: int, first: int, metric: str = "cosine",
                   block_size: int = _BLOCK) -> np.ndarray:
    """Indices of `budget` centers in pick order, starting at `first`.

    >>> pts = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 0.0], [0.0, 3.0], [5.0, 0.1]])
    >>> kcenter_greedy(pts, 3, first=0, metric="euclidean").tolist()
    [0, 4, 3]
    """
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {METRICS}")
    n = len(embeddings)
    if not 0 <= budget <= n:
        raise ValueError(f"budget {budget} outside [0, {n}]")
    if budget == 0:
        return np.empty(0, dtype=np.int64)
    if not 0 <= first < n:
        raise ValueError(f"first center {first} outside [0, {n})")
    norms = _row_norms(embeddings, block_size)
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0) if metric == "cosine" else None
    sq_norms = norms.astype(np.float64) ** 2 if metric == "euclidean" else None
    nearest = np.full(n, np.inf, dtype=np.float64)
    chosen = np.empty(budget, dtype=np.int64)
    pick = int(first)
    for step in range(budget):
        chosen[step] = pick
        center = np.asarray(embeddings[pick], dtype=np.float32)
        for lo in range(0, n, block_size):
            rows = np.asarray(embeddings[lo : lo + block_size], dtype=np.float32)
            dots = (rows @ center).astype(np.float64)
            if scale is not None:
                dist = 1.0 - dots * scale[lo : lo + block_size] * float(scale[pick])
            else:
                dist = sq_norms[lo : lo + block_size] - 2.0 * dots + float(sq_norms[pick])
            np.minimum(nearest[lo : lo + block_size], dist, out=nearest[lo : lo + block_size])
        nearest[chosen[: step + 1]] = -np.inf  # never picked twice
        pick = int(np.argmax(nearest))  # first maximum: ties to the lower index
    return chosen


@dataclass(frozen=True)
class KCenterStrategy:
    """k-center greedy on the embeddings (coverage), first center seeded.

    Args:
        embedder: embed scorer model: all-minilm-l6-v2 (default), a sentence-transformers folder or a causal LM.
        pooling: for a causal-LM embedder: mean or last.
        metric: cosine (default; 1 - cosine similarity) or euclidean (raw vectors).
    """

    embedder: str | None = None
    pooling: str = "mean"
    metric: str = "cosine"

    name: ClassVar[str] = "kcenter"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise InputError(f"{self.metric!r} is not one of {', '.join(METRICS)}", field="metric")
        from selbench.scoring.embed import POOLINGS

        if self.pooling not in POOLINGS:
            raise InputError(f"{self.pooling!r} is not one of {', '.join(POOLINGS)}", field="pooling")

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        from selbench.scoring.embed import DEFAULT_EMBEDDER, is_sentence_transformer

        embedder = self.embedder or DEFAULT_EMBEDDER
        options: dict[str, Any] = {"model": embedder, "text": "pair"}  # instruction and response
        if not is_sentence_transformer(embedder):
            options["pooling"] = self.pooling
        return {"embed": ("embed", options)}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        embeddings = pool.scores["embed"]["embedding"]
        first = int(rng.integers(len(embeddings)))
        return Selection(kcenter_greedy(embeddings, budget, first, self.metric), info={"first_center": first})

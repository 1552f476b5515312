"""DEITA's score-first, diversity-aware filter ("Repr Filter"), blocked and vectorized.

Liu et al. (2024), "What Makes Good Data for Alignment? A Comprehensive Study of Automatic Data Selection in
Instruction Tuning" (DEITA, https://arxiv.org/abs/2312.15685), reference code hkust-nlp/deita
`src/deita/selection/filter/base.py` (`IterativeFilter.filter`) and `combined_filter.py`: visit the examples
by descending score; accept the first; accept each next one unless its cosine similarity to some
already-accepted example exceeds the threshold (strictly: `> threshold` rejects); stop at the budget.

The contract (DESIGN.md): `repr_filter(embeddings, scores, budget, threshold) -> list[int]`, accepted indices
in acceptance order, ties in score broken by the lower index, i.e. the result of DEITA's filter with batch
size 1 (its default). `repr_filter_loop` is that loop as DEITA writes it, one candidate at a time, gathering
and normalizing the accepted embeddings again for every candidate: the reference the tests and
`bench/bench_repr_filter.py` compare with.

How the fast version stays exact. Candidates are taken in blocks of `block_size` in visiting order:

1. One matrix product per block (chunked over the accepted set) gives each candidate's largest similarity
   to everything accepted before the block; candidates above the threshold are rejected.
2. The survivors can still reject each other: candidate j is rejected by an earlier candidate i of the same
   block only if i itself is accepted. That is the lexicographically-first maximal independent set of the
   block's conflict graph (edges: similarity > threshold), computed in rounds of vectorized operations:
   a candidate with no undecided earlier neighbour is accepted, and its later neighbours are rejected;
   repeat. Each candidate is decided exactly as the sequential loop decides it.
3. If the block accepts more than the budget has left, the first ones (in visiting order) are kept: the
   loop would have stopped there and the later ones never change earlier decisions.

Memory is bounded by the block, the accepted rows (at most budget x d, float32, grown as they come) and
one block x chunk similarity matrix: the pool is read block by block (a memory-mapped `[n, d]` array is fine), normalized in float32, and
no n x n matrix is ever formed, so 1M x 4096 embeddings work on a machine that cannot hold them twice.
`use_faiss=True` answers step 1 with a faiss inner-product index instead of numpy (same decisions up to
float rounding; faiss-cpu is a selbench dependency).

Edge cases, as the reference behaves: NaN scores are visited last (pandas `sort_values` puts NaN last);
a zero embedding has similarity 0 with everything (DEITA's division by a zero norm gives NaN, and
`NaN > threshold` is False, so it neither rejects nor is rejected for thresholds >= 0). Decisions are made
in float32, as DEITA's torch code makes them; a pair whose similarity lies within float rounding
(~1e-6) of the threshold can be decided differently by two correct implementations.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.9
DEFAULT_BLOCK = 1024
# Largest block x accepted-chunk similarity matrix held at once (float32 values): 2**24 = 64 MB.
_MAX_SIM_VALUES = 1 << 24


def visiting_order(scores: np.ndarray) -> np.ndarray:
    """Indices by descending score, ties by lower index, NaN last.

    >>> visiting_order(np.array([0.5, 2.0, np.nan, 2.0, 1.0])).tolist()
    [1, 3, 4, 0, 2]
    """
    scores = np.asarray(scores, dtype=np.float64)
    keyed = np.where(np.isnan(scores), np.inf, -scores)  # ascending on -score; NaN after everything
    return np.argsort(keyed, kind="stable")


def normalize_rows(block: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float32; zero rows stay zero.

    >>> normalize_rows(np.array([[3.0, 4.0], [0.0, 0.0]])).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    block = np.asarray(block, dtype=np.float32)
    norms = np.linalg.norm(block, axis=1, keepdims=True)
    return np.divide(block, norms, out=np.zeros_like(block), where=norms > 0)


def _check(embeddings: np.ndarray, scores: np.ndarray, budget: int) -> None:
    if getattr(embeddings, "ndim", None) != 2:
        raise ValueError(f"embeddings must be a 2-D [n, d] array, got shape {np.shape(embeddings)}")
    if len(scores) != embeddings.shape[0]:
        raise ValueError(f"{len(scores)} scores for {embeddings.shape[0]} embeddings")
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")


def repr_filter(embeddings: np.ndarray, scores: np.ndarray, budget: int, threshold: float = DEFAULT_THRESHOLD,
                *, block_size: int = DEFAULT_BLOCK, use_faiss: bool = False) -> list[int]:
    """DEITA's score-first diversity filter: accepted indices in acceptance order (see the module docstring).

    Args:
        embeddings: `[n, d]` array (any float dtype; may be memory-mapped); cosine similarity is used.
        scores: `[n]` sort key (DEITA: complexity x quality), higher first.
        budget: how many to accept at most; fewer come back when the pool runs out.
        threshold: a candidate whose similarity to an accepted example is `> threshold` is rejected.
        block_size: candidates decided per vectorized block (speed/memory only; the result is the same).
        use_faiss: search the accepted set with a faiss inner-product index.

    Returns:
        Accepted pool indices, in acceptance order (length `min(budget, number acceptable)`).

    >>> emb = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]])
    >>> repr_filter(emb, np.array([4.0, 3.0, 2.0, 1.0]), budget=3, threshold=0.9)
    [0, 2]
    >>> repr_filter(emb, np.array([1.0, 3.0, 3.0, 0.0]), budget=1, threshold=0.9)
    [1]
    """
    _check(embeddings, scores, budget)
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    n, dim = embeddings.shape
    order = visiting_order(scores)
    accepted_idx = np.empty(min(budget, n), dtype=np.int64)
    # The accepted rows (unit, float32) grow with what is accepted, not with the budget; faiss keeps its own.
    accepted = np.empty((min(budget, n, block_size), dim), dtype=np.float32)
    count = 0
    index = None
    if use_faiss:
        import faiss

        index = faiss.IndexFlatIP(dim)
    for start in range(0, n, block_size):
        if count >= budget:
            break
        visit = order[start : start + block_size]
        # Gather in ascending index order (fast on memory maps), then restore the visiting order.
        sorted_pos = np.argsort(visit, kind="stable")
        block = np.empty((len(visit), dim), dtype=np.float32)
        block[sorted_pos] = normalize_rows(embeddings[visit[sorted_pos]])
        if count == 0:
            alive = np.ones(len(visit), dtype=bool)
        else:
            alive = _not_near_accepted(block, accepted[:count], threshold, index)
        keep = np.flatnonzero(alive)
        if len(keep):
            keep = keep[_first_maximal_independent(block[keep], threshold)]
        keep = keep[: budget - count]
        accepted_idx[count : count + len(keep)] = visit[keep]
        if index is not None:
            if len(keep):
                index.add(block[keep])
        else:
            if count + len(keep) > len(accepted):
                grown = np.empty((min(budget, n, max(2 * len(accepted), count + len(keep))), dim), dtype=np.float32)
                grown[:count] = accepted[:count]
                accepted = grown
            accepted[count : count + len(keep)] = block[keep]
        count += len(keep)
    return accepted_idx[:count].tolist()


def _not_near_accepted(block: np.ndarray, accepted: np.ndarray, threshold: float, index) -> np.ndarray:
    """Per block row: True when no accepted row (`accepted`, or the faiss `index`) has similarity > threshold."""
    if index is not None:
        best, _ = index.search(block, 1)
        return ~(best[:, 0] > threshold)
    alive = np.ones(len(block), dtype=bool)
    chunk = max(1, _MAX_SIM_VALUES // max(1, len(block)))
    for lo in range(0, len(accepted), chunk):
        rows = np.flatnonzero(alive)
        if len(rows) == 0:
            break
        sims = block[rows] @ accepted[lo : lo + chunk].T
        alive[rows[(sims > threshold).any(axis=1)]] = False
    return alive


def _first_maximal_independent(block: np.ndarray, threshold: float) -> np.ndarray:
    """Positions (ascending) the sequential greedy accepts within `block` (unit rows, in visiting order).

    >>> b = normalize_rows(np.array([[1.0, 0.0], [1.0, 0.05], [1.0, 0.1], [0.0, 1.0]]))
    >>> _first_maximal_independent(b, 0.997).tolist()  # 0 rejects 1; 2 is only close to 1, so it stays
    [0, 2, 3]
    """
    m = len(block)
    conflict = np.triu(block @ block.T > threshold, k=1)  # conflict[i, j]: i < j, too similar
    undecided = np.ones(m, dtype=bool)
    accepted = np.zeros(m, dtype=bool)
    if not conflict.any():
        return np.arange(m)
    while undecided.any():
        # Accept every undecided candidate with no undecided earlier neighbour: its earlier neighbours are
        # all rejected, so the sequential loop accepts it too.
        blocked = conflict[undecided].any(axis=0)
        newly = undecided & ~blocked
        assert newly.any(), "the earliest undecided candidate can always be decided"
        accepted |= newly
        undecided &= ~newly
        undecided &= ~conflict[newly].any(axis=0)
    return np.flatnonzero(accepted)


def repr_filter_loop(embeddings: np.ndarray, scores: np.ndarray, budget: int,
                     threshold: float = DEFAULT_THRESHOLD) -> list[int]:
    """The reference: DEITA's loop with batch size 1, one candidate at a time.

    For each candidate (descending score, ties by lower index) the accepted embeddings are gathered from the
    pool and normalized again, as `IterativeFilter.filter` does, and the candidate is rejected when any
    similarity exceeds `threshold`. O(n x budget x d) with a gather per candidate: for tests and benchmarks.

    >>> emb = np.array([[1.0, 0.0], [0.99, 0.1], [0.0, 1.0], [0.1, 0.99]])
    >>> repr_filter_loop(emb, np.array([4.0, 3.0, 2.0, 1.0]), budget=3, threshold=0.9)
    [0, 2]
    """
    _check(embeddings, scores, budget)
    values = [float(v) for v in scores]
    # Written out independently of `visiting_order`: NaN last, then descending score, then lower index.
    visit = sorted(range(len(values)), key=lambda i: (values[i] != values[i], -values[i] if values[i] == values[i] else 0.0, i))
    chosen: list[int] = []
    for i in visit:
        if len(chosen) >= budget:
            break
        candidate = normalize_rows(embeddings[i][None, :])
        if chosen:
            existing = normalize_rows(embeddings[np.asarray(chosen)])
            if ((existing @ candidate[0]) > threshold).any():
                continue
        chosen.append(int(i))
    return chosen

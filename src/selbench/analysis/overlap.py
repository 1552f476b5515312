"""How much two selections agree: overlap (shared ids / budget) and Jaccard (shared / union).

Diddee & Ippolito report the overlap of each strategy's subset with the others' and with random subsets of
the same budget. `overlap[a][b]` divides the shared count by the size of `a` (its budget), so it is
symmetric when both selections have the same budget and reads "fraction of a's picks that b also made"
otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def pair_overlap(a: Sequence[str], b: Sequence[str]) -> tuple[float, float]:
    """(shared / len(a), shared / len(union)) of two id lists; both 0.0 for empty inputs.

    >>> pair_overlap(["x", "y", "z", "w"], ["y", "z", "q", "r"])
    (0.5, 0.3333333333333333)
    """
    set_a, set_b = set(a), set(b)
    shared = len(set_a & set_b)
    union = len(set_a | set_b)
    return (shared / len(set_a) if set_a else 0.0, shared / union if union else 0.0)


def overlap_matrix(selections: Mapping[str, Sequence[str]]) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Pairwise overlap and Jaccard matrices, keyed by selection name (row, then column).

    >>> overlap, jaccard = overlap_matrix({"a": ["1", "2"], "b": ["2", "3"]})
    >>> overlap["a"]["b"], jaccard["a"]["b"], overlap["a"]["a"]
    (0.5, 0.3333333333333333, 1.0)
    """
    sets = {name: set(ids) for name, ids in selections.items()}
    overlap: dict[str, dict[str, float]] = {}
    jaccard: dict[str, dict[str, float]] = {}
    for row, set_a in sets.items():
        overlap[row], jaccard[row] = {}, {}
        for col, set_b in sets.items():
            shared = len(set_a & set_b)
            union = len(set_a | set_b)
            overlap[row][col] = shared / len(set_a) if set_a else 0.0
            jaccard[row][col] = shared / union if union else 0.0
    return overlap, jaccard

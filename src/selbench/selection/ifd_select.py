"""Keep the highest-IFD examples, as Cherry LLM and Superfiltering pick them (pure arrays).

Both drop examples whose IFD says the instruction does not help (IFD above 1) and keep the highest of the
rest, but their scripts differ in the details, which matter for ties and for IFD exactly 1:

* Cherry (`cherry_seletion/data_by_IFD.py`): drops IFD > `max_ifd` (keeps IFD == 1), sorts `(ifd, index)`
  pairs ascending and takes the last `budget`, so among equal scores the later example wins.
* Superfiltering (`code_ifd/select_data.py`): keeps IFD < `max_ifd` (strictly), sorts by IFD descending with
  Python's stable sort, so among equal scores the earlier example wins.

NaN (examples the scorer skips) is never kept. When fewer examples pass than the budget asks, the references
return fewer; a selection here always has `budget` examples, so the rest is filled, in this order, with the
dropped examples of lowest IFD first, then the skipped ones in the seeded generator's random order, and the
manifest says so (`fallback`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

RULES = ("cherry", "superfilter")


def rank_by_ifd(ifd: np.ndarray, max_ifd: float = 1.0, rule: str = "cherry") -> np.ndarray:
    """Indices of the examples the rule keeps, highest IFD first.

    >>> rank_by_ifd(np.array([0.5, 1.0, 1.2, np.nan, 0.5, 0.9])).tolist()
    [1, 5, 4, 0]
    >>> rank_by_ifd(np.array([0.5, 1.0, 1.2, np.nan, 0.5, 0.9]), rule="superfilter").tolist()
    [5, 0, 4]
    """
    ifd = np.asarray(ifd, dtype=np.float64)
    index = np.arange(len(ifd))
    if rule == "cherry":
        kept = index[~np.isnan(ifd) & (ifd <= max_ifd)]
        # lexsort sorts by the last key first: IFD descending, then index descending.
        return kept[np.lexsort((-kept, -ifd[kept]))]
    if rule == "superfilter":
        kept = index[~np.isnan(ifd) & (ifd < max_ifd)]
        return kept[np.argsort(-ifd[kept], kind="stable")]
    raise ValueError(f"rule must be one of {RULES}, got {rule!r}")


def select_by_ifd(ifd: np.ndarray, budget: int, rng: np.random.Generator, max_ifd: float = 1.0,
                  rule: str = "cherry") -> tuple[np.ndarray, str | None, dict[str, Any]]:
    """(indices in selection order, fallback reason or None, counts) for `budget` examples.

    >>> idx, why, info = select_by_ifd(np.array([0.5, 1.3, np.nan, 0.8]), 3, np.random.default_rng(0))
    >>> idx.tolist(), info["n_kept"]
    ([3, 0, 1], 2)
    """
    ifd = np.asarray(ifd, dtype=np.float64)
    if not 0 <= budget <= len(ifd):
        raise ValueError(f"budget {budget} outside [0, {len(ifd)}]")
    ranked = rank_by_ifd(ifd, max_ifd, rule)
    skipped = np.flatnonzero(np.isnan(ifd))
    info = {"n_scored": int(len(ifd) - len(skipped)), "n_skipped": int(len(skipped)), "n_kept": int(len(ranked)),
            "rule": rule, "max_ifd": max_ifd}
    if budget <= len(ranked):
        return ranked[:budget], None, info
    in_ranked = np.zeros(len(ifd), dtype=bool)
    in_ranked[ranked] = True
    dropped = np.flatnonzero(~in_ranked & ~np.isnan(ifd))
    dropped = dropped[np.argsort(ifd[dropped], kind="stable")]
    order = np.concatenate([ranked, dropped, rng.permutation(skipped)])
    reason = (f"only {len(ranked)} examples have IFD {'<=' if rule == 'cherry' else '<'} {max_ifd}; filled with "
              f"{min(budget - len(ranked), len(dropped))} above it (lowest first) and "
              f"{max(0, budget - len(ranked) - len(dropped))} unscored ones (random)")
    return order[:budget].astype(np.int64), reason, info

"""LLMBar's statistics: accuracy over both orders, positional agreement, Cohen's kappa, rating winners,
and the headline of a subset made of several sets.

Zeng et al., 2024, "Evaluating Large Language Models at Evaluating Instruction Following"
(https://arxiv.org/abs/2310.07641); reference: princeton-nlp/LLMBar `LLMEvaluator/evaluate.py` (the
statistics block at the end of its `__main__`, and the `Rating` branch of `annotate`). Pure numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def cohen_kappa(first: Sequence[int], second: Sequence[int]) -> float:
    """Unweighted Cohen's kappa of two raters' labels (as `sklearn.metrics.cohen_kappa_score`).

    The categories are the union of the values seen; kappa is undefined (nan) when chance agreement is
    total, e.g. both raters always give the same single label.

    >>> cohen_kappa([1, 1, 2, 2], [1, 1, 2, 2]), cohen_kappa([1, 2, 1, 2], [1, 1, 2, 2])
    (1.0, 0.0)
    """
    a, b = np.asarray(first), np.asarray(second)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"raters' labels must be 1-d and of equal length, got {a.shape} and {b.shape}")
    if a.size == 0:
        return float("nan")
    categories = np.union1d(a, b)
    confusion = np.zeros((categories.size, categories.size))
    np.add.at(confusion, (np.searchsorted(categories, a), np.searchsorted(categories, b)), 1)
    observed = np.trace(confusion) / a.size
    expected = float(confusion.sum(axis=1) @ confusion.sum(axis=0)) / a.size**2
    return float("nan") if expected == 1.0 else float((observed - expected) / (1.0 - expected))


def llmbar_statistics(labels: Sequence[int], choices_original: Sequence[int], choices_swapped: Sequence[int]) -> dict[str, Any]:
    """LLMBar's statistics from per-instance labels and parsed winners.

    Args:
        labels: gold better output per instance, 1 or 2.
        choices_original: winner parsed with the outputs in dataset order; 0 where unparseable.
        choices_swapped: winner parsed with the outputs swapped, already mapped back to the dataset's
            numbering (a judge answering "Output (a)" on the swapped prompt chose output 2); 0 where
            unparseable.

    Returns:
        `accuracy` (the reference's `correct_average`), `correct_original`, `correct_swapped`,
        `correct_both`, `agreement` (the reference's `equal`; two unparseable answers agree), `unparsed`
        (unparseable answers over both orders), `n`; and the reference's four kappas, computed exactly
        as it does: `kappa_original` and `kappa_swapped` (judge vs gold labels), `kappa_average` (their
        mean), `kappa_agreement` (original vs swapped order). The reference codes a choice of output 1 as
        1 and anything else (output 2, unparseable) as 0, yet keeps the gold labels as 1/2, so its
        judge-vs-label kappas compare differently coded raters (a perfect judge gets p/(1+p), p the share
        of label 1) -- we reproduce that. `kappa_average_corrected` and `kappa_agreement_corrected` are
        our addition: the same statistics with choices coded like the labels (1, 2; 0 unparseable).

    >>> s = llmbar_statistics([1, 2], [1, 1], [1, 0])
    >>> s["accuracy"], s["agreement"], s["unparsed"]
    (0.5, 0.5, 1)
    """
    y = np.asarray(labels, dtype=int)
    a = np.asarray(choices_original, dtype=int)
    b = np.asarray(choices_swapped, dtype=int)
    if not (y.shape == a.shape == b.shape) or y.ndim != 1:
        raise ValueError(f"labels and choices must be 1-d and of equal length, got {y.shape}, {a.shape}, {b.shape}")
    if not np.isin(y, (1, 2)).all() or not np.isin(a, (0, 1, 2)).all() or not np.isin(b, (0, 1, 2)).all():
        raise ValueError("labels must be 1|2 and choices 0|1|2 (0 = unparseable)")
    n = int(y.size)
    if n == 0:
        nan = float("nan")
        return {"accuracy": nan, "correct_original": nan, "correct_swapped": nan, "correct_both": nan,
                "agreement": nan, "unparsed": 0, "n": 0, "kappa_original": nan, "kappa_swapped": nan,
                "kappa_average": nan, "kappa_agreement": nan, "kappa_average_corrected": nan,
                "kappa_agreement_corrected": nan}
    ok_a, ok_b = a == y, b == y
    coded_a, coded_b = (a == 1).astype(int), (b == 1).astype(int)  # the reference's coding of choices
    kappa_a, kappa_b = cohen_kappa(coded_a, y), cohen_kappa(coded_b, y)
    return {
        "accuracy": float((ok_a.sum() + ok_b.sum()) / 2 / n),
        "correct_original": float(ok_a.mean()),
        "correct_swapped": float(ok_b.mean()),
        "correct_both": float((ok_a & ok_b).mean()),
        "agreement": float((a == b).mean()),
        "unparsed": int((a == 0).sum() + (b == 0).sum()),
        "n": n,
        "kappa_original": kappa_a,
        "kappa_swapped": kappa_b,
        "kappa_average": (kappa_a + kappa_b) / 2,
        "kappa_agreement": cohen_kappa(coded_a, coded_b),
        "kappa_average_corrected": (cohen_kappa(a, y) + cohen_kappa(b, y)) / 2,
        "kappa_agreement_corrected": cohen_kappa(a, b),
    }


# Per-set statistics that are rates; a multi-set headline takes their unweighted mean over the sets.
RATE_KEYS = ("accuracy", "correct_original", "correct_swapped", "correct_both", "agreement", "kappa_original",
             "kappa_swapped", "kappa_average", "kappa_agreement", "kappa_average_corrected",
             "kappa_agreement_corrected")


def combine_sets(per_set: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The headline statistics of a subset from its sets' statistics, as LLMBar reports them.

    The reference evaluates each set on its own, and the paper's "Adversarial" column is the unweighted
    mean of the four adversarial sets (GPTInst, GPTOut, Manual, Neighbor; sizes 92, 47, 46, 134), so the
    small sets weigh as much as Neighbor. Every rate in `RATE_KEYS` is therefore the mean over the sets
    (nan if any set's value is nan, e.g. an undefined kappa); `unparsed` and `n` are totals. Our addition:
    `accuracy_pooled` and `agreement_pooled`, the same rates over all instances together (n-weighted).
    With one set (Natural) the headline is that set's statistics.

    Args:
        per_set: {set name: `llmbar_statistics` output (with `n` and `unparsed`)}.

    >>> s = combine_sets({"A": {"accuracy": 1.0, "agreement": 1.0, "unparsed": 0, "n": 1},
    ...                   "B": {"accuracy": 0.0, "agreement": 0.5, "unparsed": 2, "n": 3}})
    >>> s["accuracy"], s["accuracy_pooled"], s["agreement"], s["agreement_pooled"], s["unparsed"], s["n"]
    (0.5, 0.25, 0.75, 0.625, 2, 4)
    """
    if not per_set:
        raise ValueError("combine_sets needs the statistics of at least one set")
    sets = list(per_set.values())
    n = [int(s["n"]) for s in sets]
    combined: dict[str, Any] = {key: float(np.mean([s[key] for s in sets])) for key in RATE_KEYS
                                if all(key in s for s in sets)}
    for key in ("accuracy", "agreement"):
        weighted = [(s[key], k) for s, k in zip(sets, n, strict=True) if k > 0]  # an empty set has nan rates
        total = sum(k for _, k in weighted)
        combined[f"{key}_pooled"] = float(sum(v * k for v, k in weighted) / total) if total else float("nan")
    combined["unparsed"] = sum(int(s["unparsed"]) for s in sets)
    combined["n"] = sum(n)
    return combined


def rating_winners(scores_1: Sequence[int | None], scores_2: Sequence[int | None]) -> tuple[np.ndarray, np.ndarray]:
    """Winners in both "orders" from the two outputs' scores, as the reference's `Rating` branch decides.

    Rating judges each output alone, so there is no order; the reference still fills both slots:
    original = 1 if score_1 > score_2 else 2, swapped = 2 if score_2 > score_1 else 1. A tie thus
    counts as one right and one wrong answer, never as agreement. If either score is unparseable
    (None), original = 1 and swapped = 2, likewise.

    >>> rating_winners([7, 5, 4, None], [3, 5, 8, 9])
    (array([1, 2, 2, 1]), array([1, 1, 2, 2]))
    """
    if len(scores_1) != len(scores_2):
        raise ValueError(f"scores must be of equal length, got {len(scores_1)} and {len(scores_2)}")
    original, swapped = [], []
    for s1, s2 in zip(scores_1, scores_2, strict=True):
        if s1 is None or s2 is None:
            original.append(1)
            swapped.append(2)
        else:
            original.append(1 if s1 > s2 else 2)
            swapped.append(2 if s2 > s1 else 1)
    return np.asarray(original, dtype=int), np.asarray(swapped, dtype=int)

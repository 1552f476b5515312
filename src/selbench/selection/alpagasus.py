"""AlpaGasus: keep the examples an LLM judge rates most accurate (Chen et al., 2023, "AlpaGasus: Training a
Better Alpaca with Fewer Data", https://arxiv.org/abs/2307.08701).

The ratings come from the `alpagasus` scorer (`selbench.scoring.alpagasus`: the judge, the prompt presets,
the parsing), computed once per dataset and judge and reused by every budget. Two rules:

* top-`budget` by rating (threshold None): the `budget` best-rated examples; unrated examples (NaN: no
  parsable rating, or outside the study's rated pool) come last, and only when fewer than `budget` examples
  have a rating (recorded as a fallback);
* a threshold: every example rated >= `threshold`, best first, at most `budget` (all of them when no budget
  is given), so the count is what the threshold yields. AlpaGasus kept ratings >= 4.5 (`rating/filter.py`,
  no budget); the study kept >= 4 and then the first `budget` of its score-sorted list (`scorer.py --prune`).

Ties are broken as the study's pipeline breaks them: its sampler shuffled the pool with a seed (42) and its
scorer sorted by score with Python's stable sort, so equal ratings keep their shuffled order. Here the
shuffle is the selection's `--seed` (`np.random.default_rng(seed).permutation`, 🤗 `Dataset.shuffle`'s), so
`--seed 42` orders ties as the study did; the same seed always gives the same ids.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.scoring.alpagasus import STUDY_POOL_SEED, AlpagasusScorer
from selbench.selection.base import Pool, Selection
from selbench.selection.longest import shuffled_rank


def select_by_rating(
    ratings: np.ndarray, budget: int, tie_rank: np.ndarray | None = None, threshold: float | None = None
) -> np.ndarray:
    """Indices of the best-rated examples, best first; equal ratings by `tie_rank` (lower first), else index.

    Without `threshold`: the top `budget`, NaN (unrated) last. With it: only ratings >= `threshold`, at most
    `budget` of them.

    >>> r = np.array([4.0, 5.0, np.nan, 4.0, 4.5])
    >>> select_by_rating(r, 3).tolist()
    [1, 4, 0]
    >>> select_by_rating(r, 4, tie_rank=np.array([4, 0, 1, 2, 3])).tolist()
    [1, 4, 3, 0]
    >>> select_by_rating(r, 5).tolist()
    [1, 4, 0, 3, 2]
    >>> select_by_rating(r, 5, threshold=4.5).tolist()
    [1, 4]
    """
    ratings = np.asarray(ratings, dtype=np.float64)
    if not 0 <= budget <= len(ratings):
        raise ValueError(f"budget {budget} outside [0, {len(ratings)}]")
    descending = np.where(np.isnan(ratings), np.inf, -ratings)  # NaN sorts after every rating
    rank = np.arange(len(ratings)) if tie_rank is None else np.asarray(tie_rank)
    order = np.lexsort((rank, descending))  # last key first: rating, then the tie rank
    if threshold is not None:
        order = order[ratings[order] >= threshold]  # NaN >= t is False
    return order[:budget].astype(np.int64, copy=False)


@dataclass(frozen=True)
class AlpagasusStrategy:
    """Args:
    judge: model name at the endpoint (the paper: gpt-3.5-turbo-0301; the study: gpt-4o).
    judge_base_url: OpenAI-compatible base URL ending in /v1; None = api.openai.com.
    judge_api_key_env: environment variable holding the API key (not needed on 127.0.0.1).
    preset: "alpagasus" (the authors' prompt and request) or "study" (ChasingRandom's).
    judge_workers: concurrent judge requests.
    judge_timeout: seconds before a request is abandoned and retried.
    max_tokens: output tokens per rating; None = the preset's (alpagasus 256, study 3).
    pool_size: rate only this many examples of a seeded shuffle; None = the preset's (alpagasus all, study 40000).
    pool_seed: seed of that shuffle (the study's sampler: 42).
    threshold: keep only ratings >= threshold, at most the budget (AlpaGasus 4.5, the study 4); None = top-budget.
    """

    judge: str
    judge_base_url: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    preset: str = "alpagasus"
    judge_workers: int = 4
    judge_timeout: float = 120.0
    max_tokens: int | None = None
    pool_size: int | None = None
    pool_seed: int = STUDY_POOL_SEED
    threshold: float | None = None

    name: ClassVar[str] = "alpagasus"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False
    study_seed_stream: ClassVar[bool] = True  # ties follow the study's Dataset.shuffle(seed) order
    # With a threshold, the selection holds what the threshold yields (at most the budget).
    variable_size: ClassVar[bool] = True
    needs_budget: ClassVar[bool] = False
    budget_help: ClassVar[str] = ("Examples to select: the top BUDGET by rating; with --threshold at most this many "
                                  "(omitted: every example that passes).")

    def __post_init__(self) -> None:
        if self.threshold is not None and (isinstance(self.threshold, bool)
                                           or not isinstance(self.threshold, (int, float))
                                           or not 0 <= self.threshold <= 5):
            raise InputError(f"{self.threshold!r} must be a number on the 0-5 scale", field="threshold")
        self.scorer_config()  # validates the judge options, naming their flags

    def scorer_config(self) -> AlpagasusScorer:
        options = {k: v for k, v in asdict(self).items() if k != "threshold"}
        return AlpagasusScorer(**options)

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        options = {k: v for k, v in asdict(self).items() if k != "threshold"}
        return {"rating": ("alpagasus", options)}

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        ratings = np.asarray(pool.scores["rating"]["score"], dtype=np.float64)
        rated = int((~np.isnan(ratings)).sum())
        chosen = select_by_rating(ratings, budget, shuffled_rank(len(ratings), rng), self.threshold)
        info: dict[str, Any] = {"rated": rated, "requested_budget": budget, "threshold": self.threshold}
        if self.threshold is not None:
            eligible = int((ratings >= self.threshold).sum())
            info["eligible"] = eligible
            if eligible == 0:
                raise InputError(f"no example is rated >= {self.threshold:g} ({rated} of {len(ratings)} examples "
                                 "have a rating)", field="threshold")
            return Selection(chosen, info=info)
        fallback = None
        if budget > rated:
            fallback = (f"only {rated} of {len(ratings)} examples have a rating; the last {budget - rated} picks "
                        "are unrated examples in shuffled order")
        return Selection(chosen, fallback=fallback, info=info)

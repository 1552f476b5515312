"""The AlpaGasus strategy's selection rule (pure arrays): top-budget or threshold, NaN handling, ties."""

from __future__ import annotations

import numpy as np
import pytest

from selbench.errors import InputError
from selbench.selection.alpagasus import AlpagasusStrategy, select_by_rating
from selbench.selection.base import STRATEGIES, Pool
from selbench.selection.longest import shuffled_rank

RATINGS = np.array([4.0, np.nan, 5.0, 4.5, 4.0, 2.0, np.nan, 4.5])


def _select(strategy, ratings, budget, seed=0):
    pool = Pool(n=len(ratings), scores={"rating": {"score": ratings}})
    return strategy.select(pool, budget, np.random.default_rng(seed))


def test_registered_and_builds_its_scorer_request():
    assert STRATEGIES.get("alpagasus") is AlpagasusStrategy
    strategy = AlpagasusStrategy(judge="gpt-4o", preset="study", threshold=4)
    scorer, options = strategy.score_requests()["rating"]
    assert scorer == "alpagasus" and options["preset"] == "study" and "threshold" not in options


def test_top_budget_is_best_first_with_ties_by_the_shuffle():
    sel = _select(AlpagasusStrategy(judge="j"), RATINGS, 4, seed=3)
    rank = shuffled_rank(len(RATINGS), np.random.default_rng(3))
    assert sel.indices[0] == 2
    assert sorted(sel.indices[1:3].tolist(), key=lambda i: rank[i]) == sel.indices[1:3].tolist()
    assert set(sel.indices[1:3].tolist()) == {3, 7}
    assert sel.indices[3] in (0, 4) and sel.fallback is None and sel.info["rated"] == 6


def test_threshold_yields_its_count_at_most_the_budget():
    strategy = AlpagasusStrategy(judge="j", threshold=4.5)
    assert sorted(_select(strategy, RATINGS, len(RATINGS)).indices.tolist()) == [2, 3, 7]
    capped = _select(strategy, RATINGS, 2)
    assert capped.indices[0] == 2 and len(capped.indices) == 2 and capped.info["eligible"] == 3
    four = _select(AlpagasusStrategy(judge="j", threshold=4), RATINGS, len(RATINGS))
    assert len(four.indices) == 5 and not np.isnan(RATINGS[four.indices]).any()


def test_unrated_examples_only_fill_a_budget_the_ratings_cannot():
    sel = _select(AlpagasusStrategy(judge="j"), RATINGS, 8)
    assert sorted(sel.indices[-2:].tolist()) == [1, 6] and "only 6 of 8" in sel.fallback
    with pytest.raises(InputError) as err:
        _select(AlpagasusStrategy(judge="j", threshold=5), np.array([np.nan, 4.0]), 2)
    assert err.value.field == "threshold"


def test_same_seed_same_picks_and_the_study_order():
    ties = np.full(20, 4.0)
    a = select_by_rating(ties, 5, shuffled_rank(20, np.random.default_rng(42)))
    b = select_by_rating(ties, 5, shuffled_rank(20, np.random.default_rng(42)))
    assert a.tolist() == b.tolist() == np.random.default_rng(42).permutation(20)[:5].tolist()


def test_bad_threshold_names_its_field():
    for bad in (6, -1, "high"):
        with pytest.raises(InputError) as err:
            AlpagasusStrategy(judge="j", threshold=bad)
        assert err.value.field == "threshold"

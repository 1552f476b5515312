"""k-center greedy: equals the textbook farthest-point loop; seeded; end to end through run_selection."""

from __future__ import annotations

import numpy as np
import pytest

from selbench.errors import InputError
from selbench.selection.base import STRATEGIES, Pool
from selbench.selection.kcenter import KCenterStrategy, kcenter_greedy


def textbook(points: np.ndarray, budget: int, first: int, metric: str) -> list[int]:
    """Sener & Savarese's Algorithm 1 with a full distance matrix, in float64."""
    x = points.astype(np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    centers = [first]
    while len(centers) < budget:
        nearest = dist[:, centers].min(axis=1)
        nearest[centers] = -1
        centers.append(int(np.argmax(nearest)))
    return centers


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("seed", range(3))
def test_equals_the_textbook_loop(metric, seed):
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((300, 5)) + rng.standard_normal((6, 5))[rng.integers(0, 6, 300)] * 3
    expected = textbook(points, 40, first=seed, metric=metric)
    for block in (7, 64, 100_000):
        assert kcenter_greedy(points, 40, first=seed, metric=metric, block_size=block).tolist() == expected


def test_duplicates_and_the_whole_pool():
    points = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    assert kcenter_greedy(points, 4, first=1).tolist() == [1, 2, 0, 3]  # distance 0 left: index order
    assert kcenter_greedy(points, 0, first=0).tolist() == []
    with pytest.raises(ValueError, match="budget"):
        kcenter_greedy(points, 5, first=0)


def test_strategy_seeds_the_first_center():
    rng = np.random.default_rng(0)
    pool = Pool(n=200, scores={"embed": {"embedding": rng.standard_normal((200, 8))}})
    a = KCenterStrategy().select(pool, 10, np.random.default_rng(1))
    b = KCenterStrategy().select(pool, 10, np.random.default_rng(1))
    c = KCenterStrategy().select(pool, 10, np.random.default_rng(2))
    assert a.indices.tolist() == b.indices.tolist() != c.indices.tolist()
    assert a.indices[0] == a.info["first_center"] == np.random.default_rng(1).integers(200)
    assert STRATEGIES.get("kcenter") is KCenterStrategy


def test_score_requests():
    assert KCenterStrategy().score_requests() == {"embed": ("embed", {"model": "all-minilm-l6-v2", "text": "pair"})}
    assert KCenterStrategy(embedder="smollm2-135m-instruct", pooling="last").score_requests() == {
        "embed": ("embed", {"model": "smollm2-135m-instruct", "text": "pair", "pooling": "last"})}


@pytest.mark.parametrize("kwargs, field", [({"metric": "l1"}, "metric"), ({"pooling": "max"}, "pooling")])
def test_bad_params_name_the_field(kwargs, field):
    with pytest.raises(InputError) as info:
        KCenterStrategy(**kwargs)
    assert info.value.field == field


def test_run_selection_with_a_causal_lm_embedder(tmp_path, tiny_model_dir, make_chat_pool):
    from selbench.scoring.base import read_scores
    from selbench.selection.manifest import run_selection

    data = make_chat_pool(tmp_path / "pool", 20)
    run = run_selection(data, "kcenter", 5, tmp_path / "k.json", params={"embedder": str(tiny_model_dir)}, seed=3)
    ids, columns = read_scores(run.manifest["scores"]["embed"]["path"])
    from selbench.selection.base import strategy_rng

    # The strategy's own random stream (selection.base.strategy_rng), derived from (name, seed, dataset).
    rng = strategy_rng(KCenterStrategy(embedder=str(tiny_model_dir)), 3, run.manifest["dataset"]["sha256"])
    first = int(rng.integers(20))
    expected = kcenter_greedy(columns["embedding"], 5, first)
    assert run.manifest["ids"] == [ids[i] for i in expected]

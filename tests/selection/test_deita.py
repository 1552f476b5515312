"""The DEITA strategy: presets, score requests, sort key, fallback, and a run through run_selection."""

from __future__ import annotations

import numpy as np
import pytest

from selbench.errors import InputError
from selbench.selection.base import STRATEGIES, Pool
from selbench.selection.deita import DeitaStrategy, deita_sort_key, repr_filter
from selbench.selection.manifest import run_selection


def test_presets_fill_what_was_not_given():
    deita = DeitaStrategy()
    assert (deita.sort_key, deita.threshold, deita.max_turns) == ("complexity*quality", 0.9, 64)
    study = DeitaStrategy(preset="study")
    assert (study.sort_key, study.threshold, study.max_turns) == ("quality", 0.9, 1)
    assert DeitaStrategy(preset="study", threshold=0.8, max_turns=3).threshold == 0.8
    assert STRATEGIES.get("deita") is DeitaStrategy


def test_score_requests_follow_the_preset():
    requests = DeitaStrategy(model="smollm2-135m-instruct").score_requests()
    assert requests == {
        "complexity": ("deita-complexity", {"max_turns": 64, "batch_size": 8, "model": "smollm2-135m-instruct"}),
        "quality": ("deita-quality", {"max_turns": 64, "batch_size": 8, "model": "smollm2-135m-instruct"}),
        "embed": ("embed", {"model": "all-minilm-l6-v2", "text": "pair"}),
    }
    study = DeitaStrategy(preset="study", quality_model="q", embedder="hf://mistralai/Mistral-7B-v0.1")
    assert study.score_requests() == {
        "quality": ("deita-quality", {"max_turns": 1, "batch_size": 8, "model": "q"}),
        "embed": ("embed", {"model": "hf://mistralai/Mistral-7B-v0.1", "text": "vicuna", "pooling": "last",
                            "max_length": 512}),
    }
    official = DeitaStrategy().score_requests()
    assert "model" not in official["complexity"][1]  # the scorers' defaults: DEITA's official models


@pytest.mark.parametrize("kwargs, field", [({"preset": "x"}, "preset"), ({"sort_key": "length"}, "sort_key"),
                                           ({"threshold": 1.5}, "threshold"), ({"max_turns": -1}, "max_turns"),
                                           ({"batch_size": 0}, "batch_size")])
def test_bad_params_name_the_field(kwargs, field):
    with pytest.raises(InputError) as info:
        DeitaStrategy(**kwargs)
    assert info.value.field == field


def test_sort_key_is_the_sum_over_turns_of_the_product():
    c = np.array([[1.0, 6.0, np.nan], [5.0, np.nan, np.nan]])
    q = np.array([[2.0, 1.0, np.nan], [3.0, np.nan, np.nan]])
    assert deita_sort_key("complexity*quality", c, q).tolist() == [8.0, 15.0]
    assert deita_sort_key("quality", None, q).tolist() == [3.0, 3.0]


def _pool(n: int, seed: int) -> Pool:
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((6, 8))[rng.integers(0, 6, n)] + 0.05 * rng.standard_normal((n, 8))
    c = rng.uniform(1, 6, (n, 2))
    q = rng.uniform(1, 6, (n, 2))
    c[::3, 1] = q[::3, 1] = np.nan  # every third example has one turn
    return Pool(n=n, scores={"complexity": {"complexity_turns": c}, "quality": {"quality_turns": q},
                             "embed": {"embedding": emb}})


def test_select_is_the_filter_on_deitas_key():
    pool = _pool(300, 0)
    key = np.nansum(pool.scores["complexity"]["complexity_turns"] * pool.scores["quality"]["quality_turns"], axis=1)
    chosen = DeitaStrategy(threshold=0.8).select(pool, 4, np.random.default_rng(0))
    assert chosen.indices.tolist() == repr_filter(pool.scores["embed"]["embedding"], key, 4, 0.8)
    assert chosen.fallback is None and chosen.info["n_accepted"] == 4
    study = DeitaStrategy(preset="study", threshold=0.8).select(pool, 4, np.random.default_rng(0))
    quality = np.nansum(pool.scores["quality"]["quality_turns"], axis=1)
    assert study.indices.tolist() == repr_filter(pool.scores["embed"]["embedding"], quality, 4, 0.8)


def test_too_few_diverse_examples_fill_with_the_best_rejected():
    pool = _pool(300, 1)  # six tight clusters: at most ~6 pass a 0.5 threshold
    chosen = DeitaStrategy(threshold=0.5).select(pool, 20, np.random.default_rng(0))
    n_ok = chosen.info["n_accepted"]
    assert n_ok < 20 and len(chosen.indices) == 20 and len(set(chosen.indices.tolist())) == 20
    assert "accepted" in chosen.fallback
    key = np.nansum(pool.scores["complexity"]["complexity_turns"] * pool.scores["quality"]["quality_turns"], axis=1)
    rest = chosen.indices[n_ok:]
    assert (np.diff(key[rest]) <= 0).all()  # best-scored first


def test_run_selection_end_to_end_with_a_tiny_scorer(tmp_path, tiny_model_dir, make_chat_pool):
    from selbench.cost.tables import collect_costs, selection_cost_rows

    data = make_chat_pool(tmp_path / "pool", 24)
    params = {"model": str(tiny_model_dir), "embedder": str(tiny_model_dir), "threshold": 0.999}
    run = run_selection(data, "deita", 6, tmp_path / "runs" / "deita.json", params=params)
    manifest = run.manifest
    assert len(manifest["ids"]) == 6 and set(manifest["scores"]) == {"complexity", "quality", "embed"}
    assert manifest["params"]["sort_key"] == "complexity*quality" and manifest["params"]["preset"] == "deita"
    # The same run by hand from the stored scores gives the same ids.
    from selbench.scoring.base import read_scores

    ids, c = read_scores(manifest["scores"]["complexity"]["path"])
    _, q = read_scores(manifest["scores"]["quality"]["path"])
    _, e = read_scores(manifest["scores"]["embed"]["path"])
    assert e["embedding"].shape == (24, 32) and c["complexity_turns"].shape == (24, 64)
    key = np.nansum(c["complexity_turns"] * q["quality_turns"], axis=1)
    expected = repr_filter(e["embedding"], key, 6, 0.999)
    assert manifest["info"]["n_accepted"] == len(expected) > 0
    assert manifest["ids"][: len(expected)] == [ids[i] for i in expected]
    # A second budget scores nothing again; the cost table has DEITA's scoring per 1,000 examples.
    again = run_selection(data, "deita", 3, tmp_path / "runs" / "deita-3.json", params=params)
    assert all(info["cached"] for info in again.manifest["scores"].values())
    rows = selection_cost_rows(collect_costs(tmp_path / "runs")[0])
    (row,) = [r for r in rows if r["strategy"] == "deita"]
    scoring = sum(info["cost"]["usd"] for info in manifest["scores"].values())
    assert row["n_selections"] == 2 and row["scoring_usd"] == pytest.approx(scoring) and scoring > 0
    assert row["usd_per_1k"] == pytest.approx((scoring + row["selection_usd"]) / 0.024)

"""Cherry LLM end to end on a tiny model: every stage a cached step, the second budget free, costs counted."""

from __future__ import annotations

import numpy as np
import pytest
from test_superfilter import write_text_pool

from selbench.assets import model_fingerprint
from selbench.cost.tables import collect_costs, selection_cost_rows
from selbench.data.schema import read_examples
from selbench.errors import InputError
from selbench.scoring.base import read_scores
from selbench.selection.cherry import CherryStrategy
from selbench.selection.cherry_pre import cluster_count, sample_middle_confidence
from selbench.selection.ifd_select import rank_by_ifd
from selbench.selection.manifest import run_selection
from selbench.store import StepStore


def reference_middle(cluster_labels, confidences, n, low_th=25, up_th=75):
    """`data_by_cluster.py` `sample_middle_confidence_data`, restated: {cluster: indices}."""
    out = {}
    for i in range(len(np.unique(cluster_labels))):
        idx = np.where(cluster_labels == i)[0]
        if len(idx) < n:
            out[i] = idx
            continue
        conf = confidences[idx]
        lo, up = np.percentile(conf, low_th), np.percentile(conf, up_th)
        mid = idx[(conf >= lo) & (conf <= up)]
        out[i] = mid if len(mid) < n else mid[:: len(mid) // n][:n]
    return np.concatenate([out[k] for k in out])


@pytest.mark.parametrize("seed", range(3))
def test_cluster_sampling_matches_the_reference(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 12, 700)
    confidences = rng.lognormal(size=700)
    assert sample_middle_confidence(labels, confidences, 10).tolist() == reference_middle(labels, confidences, 10).tolist()
    assert sample_middle_confidence(labels, confidences, 10, 1, 99).tolist() == \
        reference_middle(labels, confidences, 10, 1, 99).tolist()


def test_cluster_counts_scale_down_for_small_pools():
    assert [cluster_count(n) for n in (52002, 10000, 9999, 256, 10)] == [100, 100, 99, 2, 1]


def test_pipeline_steps_are_cached_and_counted(tmp_path, tiny_model_dir):
    store = StepStore(tmp_path / "cache")
    pool = write_text_pool(tmp_path / "pool", 120)
    params = {"model": str(tiny_model_dir), "pre_train": "cpu", "max_length": 64}
    first = run_selection(pool, "cherry", 12, tmp_path / "runs" / "cherry-12.json", params=params, store=store)
    manifest = first.manifest
    steps = manifest["prerequisites"]
    assert sorted(steps) == ["embed", "pre_experienced", "pre_model"]
    assert not any(s["cached"] for s in steps.values())
    # 120 examples: one cluster (at most a tenth of the pool), 10 pre-experienced examples.
    assert manifest["info"]["n_clusters"] == 1 and manifest["info"]["pre_experienced"] == 10
    assert steps["pre_model"]["cost"]["tokens"] > 0 and steps["embed"]["cost"]["wall_seconds"] > 0
    _, columns = read_scores(manifest["scores"]["ifd"]["path"])
    ids = [e.id for e in read_examples(pool)]
    assert manifest["ids"] == [ids[i] for i in rank_by_ifd(columns["ifd"], rule="cherry")[:12]]
    # The IFD model is the trained one, not the base model.
    base = model_fingerprint(str(tiny_model_dir))["model_sha256"]
    assert manifest["scores"]["ifd"]["config"]["model_sha256"] not in (base, None)
    assert manifest["info"]["pre_model"] == steps["pre_model"]["path"]

    second = run_selection(pool, "cherry", 24, tmp_path / "runs" / "cherry-24.json", params=params, store=store)
    assert all(s["cached"] for s in second.manifest["prerequisites"].values())
    assert second.manifest["scores"]["ifd"]["cached"]
    parts = second.manifest["cost"]["extra"]["parts"]
    assert sum(p["wall_seconds"] for p in parts if not p["step"].startswith("select:")) == 0.0
    assert second.manifest["ids"][:12] == manifest["ids"]

    selections, _ = collect_costs(tmp_path / "runs")
    (row,) = selection_cost_rows(selections)
    counted = sum(s["cost"]["usd"] for s in steps.values()) + manifest["scores"]["ifd"]["cost"]["usd"]
    assert row["strategy"] == "cherry" and row["n_selections"] == 2
    assert row["scoring_usd"] == pytest.approx(counted)


def test_bad_params_name_their_field():
    for params, field in (({"n_clusters": 0}, "n_clusters"), ({"pre_train": "set1"}, "pre_train"),
                          ({"low_percentile": 80, "high_percentile": 20}, "low_percentile"),
                          ({"kmeans": "dbscan"}, "kmeans")):
        with pytest.raises(InputError, match=field):
            CherryStrategy(**params)


def test_pre_experienced_key_changes_with_every_input(tmp_path):
    from selbench.selection.cherry_pre import PreExperiencedStep

    pool = write_text_pool(tmp_path / "pool", 20)
    scores = tmp_path / "scores.parquet"
    scores.write_bytes(b"")  # only its existence matters for the key; its content is keyed by scores_key
    base = PreExperiencedStep(str(pool), str(scores), "k" * 64, n_clusters=2)
    keys = {base.key()}
    for change in ({"scores_key": "j" * 64}, {"n_clusters": 3}, {"per_cluster": 5}, {"low": 1.0}, {"high": 99.0},
                   {"seed": 1}, {"kmeans": "faiss"}):
        keys.add(PreExperiencedStep(**{**base.__dict__, **change}).key())
    other = write_text_pool(tmp_path / "other", 20, seed=1)
    keys.add(PreExperiencedStep(**{**base.__dict__, "data": str(other)}).key())
    assert len(keys) == 9

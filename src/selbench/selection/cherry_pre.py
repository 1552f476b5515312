"""Cherry LLM's pre-experienced data: k-means over instruction embeddings, a perplexity band in each cluster.

Cherry (tianyi-lab/Cherry_LLM `cherry_seletion/data_by_cluster.py`, run as its README shows with
`--sample_num 10 --kmeans_num_clusters 100 --low_th 25 --up_th 75`) clusters the mean last hidden states of the
Alpaca prompts (`scoring.embed`, `text="cherry_prompt"`) with scikit-learn `KMeans(n_clusters=100,
random_state=0)` and takes from each cluster up to 10 examples whose prompt perplexity lies between the
cluster's 25th and 75th percentiles, evenly spaced in dataset order (`sample_middle_confidence`). Its script's
argparse defaults are 1 and 99; the README command and the function's own defaults are 25 and 75, which we use.

Small pools: 100 clusters x 10 would be the whole of a 1,000-example pool, so the cluster count scales down
(`cluster_count`): at most one cluster per `10 x per_cluster` examples, i.e. at most a tenth of the pool is
pre-experienced (100 clusters from 10,000 examples up; 2 clusters for 256). The count used is recorded.

`n_init=10` is set explicitly: it was scikit-learn's default when Cherry was released (it is "auto", i.e. 1
for k-means++, since 1.4). Pools above 100,000 examples use faiss k-means by default (`kmeans="auto"`), seeded
the same way but not bit-identical to scikit-learn's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selbench.cost import CostMeter, PriceSheet
from selbench.hashing import sha256_lines
from selbench.step import InputsNotReady, Step
from selbench.store import StepStore, write_json_atomic

KMEANS = ("auto", "sklearn", "faiss")
FAISS_ABOVE = 100_000
SELECTION_FILE = "selection.json"
LABELS_FILE = "labels.npy"


def cluster_count(n: int, n_clusters: int = 100, per_cluster: int = 10) -> int:
    """Clusters for a pool of `n`: Cherry's count, lowered so that at most a tenth of the pool is taken.

    >>> cluster_count(52002), cluster_count(256), cluster_count(50), cluster_count(3000, 100, 10)
    (100, 2, 1, 30)
    """
    return max(1, min(n_clusters, n // (10 * per_cluster), n))


def sample_middle_confidence(labels: np.ndarray, confidences: np.ndarray, n: int, low: float = 25,
                             high: float = 75) -> np.ndarray:
    """Cherry's per-cluster sampling: pool indices, cluster by cluster, in dataset order within each.

    For each cluster 0..k-1 (k = number of distinct labels, as the reference counts them): all of its examples
    if it has fewer than `n`; else those whose confidence lies within the cluster's [low, high] percentiles,
    all of them if fewer than `n`, else every `len // n`-th of them, the first `n`.

    >>> labels = np.array([0, 0, 0, 0, 0, 1])
    >>> sample_middle_confidence(labels, np.array([5., 1., 3., 4., 2., 9.]), n=2).tolist()
    [2, 3, 5]
    """
    labels = np.asarray(labels)
    confidences = np.asarray(confidences, dtype=np.float64)
    picked = []
    for cluster in range(len(np.unique(labels))):
        members = np.flatnonzero(labels == cluster)
        if len(members) < n:
            picked.append(members)
            continue
        values = confidences[members]
        lower, upper = np.percentile(values, low), np.percentile(values, high)
        middle = members[(values >= lower) & (values <= upper)]
        picked.append(middle if len(middle) < n else middle[:: len(middle) // n][:n])
    return np.concatenate(picked).astype(np.int64) if picked else np.zeros(0, dtype=np.int64)


def kmeans_labels(vectors: np.ndarray, k: int, seed: int = 0, backend: str = "auto") -> np.ndarray:
    """Cluster labels of `vectors` (float32) with k-means, seeded."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if backend == "auto":
        backend = "faiss" if len(vectors) > FAISS_ABOVE else "sklearn"
    if backend == "sklearn":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=k, random_state=seed, n_init=10).fit(vectors).labels_.astype(np.int64)
    if backend == "faiss":
        import faiss

        km = faiss.Kmeans(vectors.shape[1], k, niter=300, nredo=10, seed=seed, verbose=False)
        km.train(vectors)
        return km.index.search(vectors, 1)[1][:, 0].astype(np.int64)
    raise ValueError(f"backend must be one of {KMEANS}, got {backend!r}")


@dataclass(frozen=True)
class PreExperiencedStep(Step):
    """Pick Cherry's pre-experienced examples from cached embeddings + prompt perplexities (an "embed" score step).

    Args:
        data: prepared dataset folder.
        scores: the embed step's `scores.parquet` (columns `embedding`, `ppl`).
        scores_key: that step's key (the input this step's key is built from).
        n_clusters: k-means clusters actually used (after `cluster_count`).
        per_cluster: examples per cluster.
        low / high: the perplexity percentile band.
        seed: k-means random_state.
        kmeans: "auto", "sklearn" or "faiss".
        prices: price sheet (not in the key).
    """

    data: str
    scores: str
    scores_key: str
    n_clusters: int
    per_cluster: int = 10
    low: float = 25.0
    high: float = 75.0
    seed: int = 0
    kmeans: str = "auto"
    prices: PriceSheet | None = field(default=None, compare=False)

    name: ClassVar[str] = "cherry_pre"
    VERSION: ClassVar[int] = 1

    def config(self) -> dict[str, Any]:
        return {"n_clusters": self.n_clusters, "per_cluster": self.per_cluster, "low": self.low, "high": self.high,
                "seed": self.seed, "kmeans": self.kmeans}

    def inputs(self) -> dict[str, Any]:
        from selbench.data.schema import dataset_sha256

        if not Path(self.scores).is_file():
            raise InputsNotReady(f"{self.scores} does not exist yet")
        return {"dataset": dataset_sha256(self.data), "embeddings": self.scores_key}

    def describe(self) -> str:
        return f"cherry pre-experienced {Path(self.data).name}"

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        import pyarrow.parquet as pq

        from selbench.scoring.base import read_scores

        with CostMeter(self.name, prices=self.prices) as meter:
            ids = pq.read_table(Path(self.data) / "data.parquet", columns=["id"]).column("id").to_pylist()
            score_ids, columns = read_scores(self.scores)
            assert score_ids == ids, f"{self.scores} does not hold the dataset's examples in order"
            labels = kmeans_labels(np.asarray(columns["embedding"]), self.n_clusters, self.seed, self.kmeans)
            picked = sample_middle_confidence(labels, columns["ppl"], self.per_cluster, self.low, self.high)
            chosen = [ids[i] for i in picked]
            np.save(tmp / LABELS_FILE, labels)
            # A selection manifest (DESIGN.md): `selbench.training.train` reads it like any other.
            from selbench.data.schema import dataset_sha256

            write_json_atomic(tmp / SELECTION_FILE, {
                "strategy": "cherry-pre-experienced", "params": self.config(), "budget": len(chosen),
                "dataset": {"path": str(self.data), "sha256": dataset_sha256(self.data), "n": len(ids)},
                "ids": chosen, "ids_sha256": sha256_lines(chosen)})
        sizes = np.bincount(labels, minlength=self.n_clusters)
        return {"n_selected": len(chosen), "n_clusters": self.n_clusters,
                "cluster_sizes": {"min": int(sizes.min()), "max": int(sizes.max())}, "cost": meter.record.to_dict()}


def load_pre_selection(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path) / SELECTION_FILE).read_text(encoding="utf-8"))

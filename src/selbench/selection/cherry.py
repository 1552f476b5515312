"""Cherry LLM (Li et al., NAACL 2024, "From Quantity to Quality: Boosting LLM Performance with Self-Guided Data
Selection for Instruction Tuning", https://arxiv.org/abs/2308.12032; tianyi-lab/Cherry_LLM).

The whole pipeline, each stage its own cached step, so a second budget costs nothing:

1. embeddings: the base model's mean last hidden state of every example's Alpaca prompt, and the prompt's
   perplexity (score step `embed`, Cherry's `data_analysis.py --mod pre`);
2. pre-experienced data: k-means clusters, a perplexity band per cluster (step `cherry_pre`,
   `data_by_cluster.py`; see `selection.cherry_pre` for the rules and how cluster counts scale down);
3. the pre-experienced model: the base model fine-tuned on those examples (step `train`, `selbench.training`;
   preset "cherry" = the paper's settings, "cpu" = a small run for tests and demos);
4. IFD of the whole pool with that model (score step `ifd`, `data_analysis.py --mod cherry`);
5. selection: drop IFD > 1, keep the highest (`data_by_IFD.py`; `selection.ifd_select`).

Strategies are pure array logic; Cherry is the one that needs model steps before its scores can even be
requested (its IFD model is an output of step 3). `run_selection` therefore calls the strategy's `prepare` hook
first: it runs steps 1-3 through the store and returns the IFD score request with the trained model's path,
the prerequisite steps (keys, costs: the manifest records them under `prerequisites` and the cost tables count
them) and what they decided (cluster count, pre-experienced size). `select` stays pure.

Training settings of the pre-experienced model: Cherry's README gives batch 128, lr 2e-5, 3 epochs, 512 tokens,
weight decay 0, warmup 0.03 and the Alpaca prompt; it trained with Stanford Alpaca's code, whose scheduler is
cosine. The "cpu" preset (1 epoch, batch 8, 128 tokens, lr 1e-4) only makes the pipeline runnable on a laptop.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.selection.base import Pool, Prepared, Selection
from selbench.selection.cherry_pre import KMEANS, SELECTION_FILE, PreExperiencedStep, cluster_count
from selbench.selection.ifd_select import select_by_ifd

log = logging.getLogger(__name__)

PRE_TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "cherry": {"learning_rate": 2e-5, "effective_batch_size": 128, "per_device_batch_size": 2, "epochs": 3.0,
               "max_length": 512, "weight_decay": 0.0, "warmup_ratio": 0.03, "lr_scheduler": "cosine",
               "template": "alpaca", "lora": False},
    "cpu": {"learning_rate": 1e-4, "effective_batch_size": 8, "per_device_batch_size": 8, "epochs": 1.0,
            "max_length": 128, "weight_decay": 0.0, "warmup_ratio": 0.0, "lr_scheduler": "linear",
            "template": "alpaca", "lora": False, "save_steps": 1000},
}


@dataclass(frozen=True)
class CherryStrategy:
    """Args:
    model: base model: embedded, fine-tuned into the pre-experienced model, which then scores the pool (packaged name, folder or hf://).
    n_clusters: k-means clusters (Cherry: 100); fewer for small pools (at most one per 10 x per_cluster examples).
    per_cluster: pre-experienced examples per cluster (Cherry: 10).
    low_percentile: lower edge of the prompt-perplexity band sampled in each cluster (Cherry's README: 25).
    high_percentile: upper edge of that band (Cherry's README: 75).
    kmeans_seed: k-means random_state (Cherry: 0).
    kmeans: "auto" (scikit-learn up to 100,000 examples, faiss above), "sklearn" or "faiss".
    pre_train: training of the pre-experienced model: "cherry" (the paper's settings) or "cpu" (a small run).
    max_length: token limit of IFD and of the embedded prompt (Cherry: 512).
    max_ifd: examples with IFD above it are dropped (Cherry: 1.0).
    """

    model: str = "smollm2-135m-instruct"
    n_clusters: int = 100
    per_cluster: int = 10
    low_percentile: float = 25.0
    high_percentile: float = 75.0
    kmeans_seed: int = 0
    kmeans: str = "auto"
    pre_train: str = "cherry"
    max_length: int = 512
    max_ifd: float = 1.0

    name: ClassVar[str] = "cherry"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for field_name in ("n_clusters", "per_cluster", "max_length"):
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"got {value!r}, allowed: an integer >= 1", field=field_name)
        if not 0 <= self.low_percentile <= self.high_percentile <= 100:
            raise InputError(f"got {self.low_percentile!r}..{self.high_percentile!r}, allowed: "
                             "0 <= low_percentile <= high_percentile <= 100", field="low_percentile")
        if self.kmeans not in KMEANS:
            raise InputError(f"got {self.kmeans!r}, allowed: {', '.join(KMEANS)}", field="kmeans")
        if self.pre_train not in PRE_TRAIN_PRESETS:
            raise InputError(f"got {self.pre_train!r}, allowed: {', '.join(PRE_TRAIN_PRESETS)}", field="pre_train")
        if not isinstance(self.max_ifd, (int, float)) or not np.isfinite(self.max_ifd) or self.max_ifd <= 0:
            raise InputError(f"got {self.max_ifd!r}, allowed: a number > 0", field="max_ifd")

    def embed_request(self) -> tuple[str, dict[str, Any]]:
        return "embed", {"model": self.model, "text": "cherry_prompt", "perplexity": True,
                         "max_length": self.max_length}

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        return {}  # the IFD request names the pre-experienced model, known only after `prepare`

    def prepare(self, data_dir: str | Path, store: Any, prices: Any = None) -> Prepared:
        """Run the prerequisite steps (embeddings, pre-experienced data, pre-experienced model); cached."""
        return prepare_cherry(self, data_dir, store, prices)

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        indices, fallback, info = select_by_ifd(pool.scores["ifd"]["ifd"], budget, rng, self.max_ifd, "cherry")
        return Selection(indices, fallback=fallback, info=info)


def pre_train_config(preset: str) -> Any:
    from selbench.training.presets import TrainConfig

    return TrainConfig(**PRE_TRAIN_PRESETS[preset])


def _step_info(kind: str, key: str, path: Path, cost: dict[str, Any], cached: bool, **extra: Any) -> dict[str, Any]:
    return {"step": kind, "key": key, "path": str(path), "cost": dict(cost), "cached": cached, **extra}


def prepare_cherry(strategy: CherryStrategy, data_dir: str | Path, store: Any, prices: Any = None) -> Prepared:
    """Steps 1-3 of the module docstring, each looked up in (or run into) the store."""
    import pyarrow.parquet as pq

    from selbench.scoring.base import compute_scores
    from selbench.training.train import train

    data_dir = Path(data_dir)
    steps: dict[str, dict[str, Any]] = {}
    call_costs: list[dict[str, Any]] = []

    scorer, options = strategy.embed_request()
    embedded = compute_scores(data_dir, scorer, options, store, prices=prices)
    steps["embed"] = _step_info("score:embed", embedded.key, embedded.path, embedded.cost, embedded.cached)
    call_costs.append(embedded.call_cost)

    n = pq.ParquetFile(data_dir / "data.parquet").metadata.num_rows
    k = cluster_count(n, strategy.n_clusters, strategy.per_cluster)
    pre = PreExperiencedStep(str(data_dir), str(embedded.path), embedded.key, k, strategy.per_cluster,
                             float(strategy.low_percentile), float(strategy.high_percentile), strategy.kmeans_seed,
                             strategy.kmeans, prices)
    picked = pre.run(store)
    steps["pre_experienced"] = _step_info("cherry_pre", picked.key, picked.path, picked.cost, picked.cached,
                                          n_selected=picked.stats["n_selected"], n_clusters=k)
    call_costs.append(_call_cost(picked.cost, picked.cached, "cherry_pre"))

    trained = train(strategy.model, data_dir, picked.path / SELECTION_FILE, pre_train_config(strategy.pre_train),
                    None, store)
    found = store.lookup("train", trained["key"])
    assert found is not None, f"train step {trained['key']} is not in the store right after running"
    steps["pre_model"] = _step_info("train", found.key, found.path, found.cost, trained["cached"],
                                    preset=strategy.pre_train, final_loss=trained.get("final_loss"))
    call_costs.append(_call_cost(found.cost, trained["cached"], "train"))

    ifd_options = {"model": str(found.path), "method": "cherry", "max_length": strategy.max_length}
    info = {"pool_size": n, "n_clusters": k, "n_clusters_requested": strategy.n_clusters,
            "pre_experienced": picked.stats["n_selected"], "pre_model": str(found.path)}
    log.info("cherry: %d clusters, %d pre-experienced examples, model %s", k, info["pre_experienced"], found.path)
    return Prepared(score_requests={"ifd": ("ifd", ifd_options)}, steps=steps, call_costs=call_costs, info=info)


def _call_cost(cost: dict[str, Any], cached: bool, step: str) -> dict[str, Any]:
    """What this call paid for a step: its record when it ran now, nothing when it was cached."""
    from selbench.cost import CostRecord

    if not cached:
        return dict(cost)
    free = CostRecord(step=step).to_dict()
    free["extra"] = {"cached": True}
    return free

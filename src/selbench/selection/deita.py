"""DEITA: score-first, diversity-aware selection (Liu et al., 2024, https://arxiv.org/abs/2312.15685).

hkust-nlp/deita's pipeline: score every example with its complexity and quality scorers
(`selbench.scoring.deita`), embed it (`selbench.scoring.embed`), sort by the score and keep an example only if
it is not too similar to one already kept (`repr_filter`, cosine > `threshold` rejects; DEITA's default
threshold 0.9), until the budget is met.

Presets:

* `deita`: DEITA's defaults: sort key `complexity*quality` = sum over turns of complexity_t x quality_t
  (`Combined_Filter._sort` with its default `sort_key="complexity_scores,quality_scores"`), every turn of a
  multi-turn example scored (`max_turns` 64), threshold 0.9.
* `study`: Diddee & Ippolito's run (ChasingRandom `src/deita_selection.py`): `sort_key="quality_scores"` (the
  quality scorer only, so the complexity scorer never runs), threshold 0.9, one instruction/response pair per
  example (their converter writes each example as one human/gpt pair: `max_turns` 1).

Scorer models: DEITA's official scorers by default (`hf://hkust-nlp/deita-complexity-scorer`,
`hf://hkust-nlp/deita-quality-scorer`); offline, `model` names a stand-in for both (the machinery is DEITA's,
the numbers are not). Embeddings: `embedder` is the `embed` scorer's model, by default the packaged
all-MiniLM-L6-v2 (works offline), which embeds the first instruction/response pair (`text="pair"`: a
constant template prefix would only raise every similarity). DEITA and the study embed with a causal LM
instead (`embedder="hf://mistralai/Mistral-7B-v0.1"`): for a causal LM the strategy asks the embed scorer
for DEITA's recipe, the last token's last-layer hidden state of the whole conversation in the vicuna_v1.1
template, cut at 512 tokens (`text="vicuna", pooling="last", max_length=512`; the study:
`max_length=512, conv_template="vicuna_v1.1"`).

When the filter accepts fewer than `budget` examples (the pool runs out of diverse ones; DEITA then returns
fewer), the rest is filled with the highest-scoring rejected examples in visiting order, and the manifest's
`fallback` says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.errors import InputError
from selbench.selection.base import Pool, Selection
from selbench.selection.repr_filter import DEFAULT_THRESHOLD, repr_filter, repr_filter_loop, visiting_order

__all__ = ["DeitaStrategy", "deita_sort_key", "repr_filter", "repr_filter_loop"]

SORT_KEYS = ("complexity*quality", "quality", "complexity")
PRESETS: dict[str, dict[str, Any]] = {
    "deita": {"sort_key": "complexity*quality", "max_turns": 64},
    "study": {"sort_key": "quality", "max_turns": 1},
}
DEITA_EMBED = {"text": "vicuna", "pooling": "last", "max_length": 512}


def deita_sort_key(sort_key: str, complexity_turns: np.ndarray | None, quality_turns: np.ndarray | None) -> np.ndarray:
    """DEITA's final score: the product of the chosen per-turn scores, summed over turns (NaN = no turn).

    >>> c = np.array([[2.0, 3.0], [4.0, np.nan]])
    >>> q = np.array([[1.0, 2.0], [5.0, np.nan]])
    >>> deita_sort_key("complexity*quality", c, q).tolist(), deita_sort_key("quality", None, q).tolist()
    ([8.0, 20.0], [3.0, 5.0])
    """
    parts = {"complexity": complexity_turns, "quality": quality_turns}
    product = None
    for name in sort_key.split("*"):
        turns = np.asarray(parts[name], dtype=np.float64)
        product = turns if product is None else product * turns
    assert product is not None, f"empty sort key {sort_key!r}"
    return np.nansum(product, axis=1)


@dataclass(frozen=True)
class DeitaStrategy:
    """DEITA's score-first, diversity-aware selection.

    Args:
        preset: deita (complexity x quality, all turns) or study (quality only, first turn; Diddee & Ippolito).
        sort_key: complexity*quality, quality or complexity; default from the preset.
        threshold: cosine similarity above which a candidate is rejected (DEITA and the study: 0.9).
        model: scorer model for both scores (a stand-in offline); default DEITA's official scorers.
        complexity_model: complexity scorer model; overrides model.
        quality_model: quality scorer model; overrides model.
        max_turns: conversation turns scored per example; 0 = the preset's (deita 64, study 1).
        embedder: embed scorer model: all-minilm-l6-v2 (default; first pair), a sentence-transformers folder, or a causal LM (DEITA's recipe: last token, vicuna template, 512 tokens).
        batch_size: scorer batch size.
        use_faiss: search the accepted set with faiss (same picks up to float rounding).
    """

    preset: str = "deita"
    sort_key: str | None = None
    threshold: float = DEFAULT_THRESHOLD
    model: str | None = None
    complexity_model: str | None = None
    quality_model: str | None = None
    max_turns: int = 0
    embedder: str | None = None
    batch_size: int = 8
    use_faiss: bool = False

    name: ClassVar[str] = "deita"
    VERSION: ClassVar[int] = 1
    uses_against: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"{self.preset!r} is not one of {', '.join(PRESETS)}", field="preset")
        for name, value in PRESETS[self.preset].items():  # the preset fills what was not given
            if getattr(self, name) in (None, 0):
                object.__setattr__(self, name, value)
        if self.sort_key not in SORT_KEYS:
            raise InputError(f"{self.sort_key!r} is not one of {', '.join(SORT_KEYS)}", field="sort_key")
        threshold = self.threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not -1.0 <= threshold <= 1.0:
            raise InputError(f"{threshold!r} is not a cosine similarity in [-1, 1]", field="threshold")
        object.__setattr__(self, "threshold", float(threshold))
        if isinstance(self.max_turns, bool) or not isinstance(self.max_turns, int) or self.max_turns < 1:
            raise InputError(f"{self.max_turns!r} is not an integer >= 1", field="max_turns")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"{self.batch_size!r} is not an integer >= 1", field="batch_size")

    def _scorer_options(self, kind: str) -> dict[str, Any]:
        options: dict[str, Any] = {"max_turns": self.max_turns, "batch_size": self.batch_size}
        model = getattr(self, f"{kind}_model") or self.model
        if model:
            options["model"] = model
        return options

    def embed_options(self) -> dict[str, Any]:
        from selbench.scoring.embed import DEFAULT_EMBEDDER, is_sentence_transformer

        embedder = self.embedder or DEFAULT_EMBEDDER
        if is_sentence_transformer(embedder):
            return {"model": embedder, "text": "pair"}
        return {"model": embedder, **DEITA_EMBED}

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]:
        requests = {kind: (f"deita-{kind}", self._scorer_options(kind)) for kind in self.sort_key.split("*")}
        requests["embed"] = ("embed", self.embed_options())
        return requests

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection:
        turns = {kind: pool.scores[kind][f"{kind}_turns"] if kind in pool.scores else None
                 for kind in ("complexity", "quality")}
        key = deita_sort_key(self.sort_key, turns["complexity"], turns["quality"])
        embeddings = pool.scores["embed"]["embedding"]
        accepted = repr_filter(embeddings, key, budget, self.threshold, use_faiss=self.use_faiss)
        order = visiting_order(key)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        info: dict[str, Any] = {"n_accepted": len(accepted),
                                "n_visited": int(rank[accepted].max()) + 1 if accepted else 0}
        fallback = None
        indices = np.asarray(accepted, dtype=np.int64)
        if len(accepted) < budget:
            taken = np.zeros(len(order), dtype=bool)
            taken[indices] = True
            rest = order[~taken[order]][: budget - len(accepted)]
            indices = np.concatenate([indices, rest])
            fallback = (f"the diversity filter accepted {len(accepted)} of {pool.n} examples at threshold "
                        f"{self.threshold}; the other {len(rest)} are the best-scored rejected ones")
        return Selection(indices, fallback=fallback, info=info)

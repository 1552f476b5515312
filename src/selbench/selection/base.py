"""Strategy protocol and the `STRATEGIES` registry.

A strategy is a frozen dataclass of its parameters with three members:

* `score_requests()` -> {role: (scorer name, scorer options)}: the per-example scores it needs. They are
  computed once per (dataset, scorer config) by the cached "score" step and reused by every budget.
* `select(pool, budget, rng)` -> `Selection`: pure array logic, scores in, pool indices out (in selection
  order). No files, no models.
* `name`, `VERSION` (bumped when its output changes for the same inputs) and `uses_against` (whether it
  reads other selections, as the random baselines do).
* optionally `study_seed_stream` (default False): see `strategy_rng` for which random stream `rng` is.
* optionally `variable_size = True`: the strategy may select fewer than `budget` examples (a rating
  threshold yields what it yields); the manifest's `budget` is then the number selected.
* optionally `prepare(data_dir, store, prices)` -> `Prepared`: model steps that must run before the scores
  can be requested (Cherry fine-tunes the model that computes its IFD). `run_selection` calls it first and
  adds its score requests to `score_requests()`'s; its steps are recorded in the manifest (`prerequisites`)
  and counted by the cost tables. Each of them must be a cached step, so a second budget costs nothing.

Built-ins register lazily as "module:attr" strings; outside packages use the `selbench.strategies`
entry-point group.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Protocol

import numpy as np

from selbench.registry import Registry


@dataclass
class Pool:
    """What a strategy selects from.

    Args:
        n: number of examples in the dataset.
        scores: role -> column name -> per-example values (aligned with dataset order).
        against: name -> pool indices of another selection (in its selection order), for the
            random baselines that are defined relative to the strategies they judge.
    """

    n: int
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    against: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Selection:
    """A strategy's answer.

    Args:
        indices: selected pool indices, in selection order.
        fallback: None, or why the strategy could not honour its constraint and what it did instead.
        info: anything else worth recording in the manifest (e.g. the attempts a sampler needed).
    """

    indices: np.ndarray
    fallback: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """What a strategy's `prepare` hook ran before scoring.

    Args:
        score_requests: {role: (scorer name, options)} that depend on the prerequisites.
        steps: name -> {step, key, path, cost, cached, ...} of each prerequisite step (its full cost record).
        call_costs: what this call paid for them (zero records for cached steps).
        info: facts for the manifest's `info` (e.g. cluster counts actually used).
    """

    score_requests: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    call_costs: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


class Strategy(Protocol):
    """What `STRATEGIES` entries are: frozen dataclasses of parameters with these members."""

    name: ClassVar[str]
    VERSION: ClassVar[int]
    uses_against: ClassVar[bool]

    def score_requests(self) -> dict[str, tuple[str, dict[str, Any]]]: ...

    def select(self, pool: Pool, budget: int, rng: np.random.Generator) -> Selection: ...


def strategy_rng(strategy: Any, seed: int, dataset_sha256: str) -> np.random.Generator:
    """The random generator a strategy's `select` gets for `--seed seed` on the dataset `dataset_sha256`.

    By default a stream of the strategy's own, derived with `numpy.random.SeedSequence` from (strategy name,
    seed, dataset sha256): `select random --seed 5` and `select strict-random --seed 5` on one pool, or one
    baseline on two pools, never walk the same stream, so two baselines share ids only as often as chance
    says (with one shared `default_rng(seed)`, both drew from the same permutation and shared far more).

    A strategy with `study_seed_stream = True` gets `np.random.default_rng(seed)` itself, the stream the
    study's `Dataset.shuffle(seed)` uses: `longest` breaks ties in that shuffled order, so the same seed picks
    the same examples as the study's sampler (tests/selection/test_longest.py checks it against 🤗 datasets).

    >>> a = strategy_rng(STRATEGIES.get("random")(), 5, "ab" * 32).integers(0, 2**32, 4)
    >>> b = strategy_rng(STRATEGIES.get("strict-random")(), 5, "ab" * 32).integers(0, 2**32, 4)
    >>> bool((a != b).any())
    True
    """
    if getattr(strategy, "study_seed_stream", False):
        return np.random.default_rng(seed)
    import hashlib

    name = hashlib.sha256(f"selbench.selection:{strategy.name}".encode()).digest()
    entropy = [seed, int.from_bytes(name, "big"), int(dataset_sha256, 16)]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def strategy_params(strategy: Any) -> dict[str, Any]:
    """The strategy's parameters as a plain dict (what the manifest's `params` and the cache key hold)."""
    return asdict(strategy)


STRATEGIES: Registry[Any] = Registry("strategy", "selbench.strategies")
STRATEGIES.register("alpagasus", "selbench.selection.alpagasus:AlpagasusStrategy")
STRATEGIES.register("deita", "selbench.selection.deita:DeitaStrategy")
STRATEGIES.register("full", "selbench.selection.full:FullStrategy")
STRATEGIES.register("kcenter", "selbench.selection.kcenter:KCenterStrategy")
STRATEGIES.register("longest", "selbench.selection.longest:LongestStrategy")
STRATEGIES.register("random", "selbench.selection.random:RandomStrategy")
STRATEGIES.register("rds", "selbench.selection.rds:RdsStrategy")
STRATEGIES.register("strict-random", "selbench.selection.strict_random:StrictRandomStrategy")
STRATEGIES.register("cherry", "selbench.selection.cherry:CherryStrategy")
STRATEGIES.register("superfilter", "selbench.selection.superfilter:SuperfilterStrategy")

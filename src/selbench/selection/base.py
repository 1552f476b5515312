"""Strategy protocol and the `STRATEGIES` registry.

A strategy is a frozen dataclass of its parameters with three members:

* `score_requests()` -> {role: (scorer name, scorer options)}: the per-example scores it needs. They are
  computed once per (dataset, scorer config) by the cached "score" step and reused by every budget.
* `select(pool, budget, rng)` -> `Selection`: pure array logic, scores in, pool indices out (in selection
  order). No files, no models.
* `name`, `VERSION` (bumped when its output changes for the same inputs) and `uses_against` (whether it
  reads other selections, as the random baselines do).
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


def strategy_params(strategy: Any) -> dict[str, Any]:
    """The strategy's parameters as a plain dict (what the manifest's `params` and the cache key hold)."""
    return asdict(strategy)


STRATEGIES: Registry[Any] = Registry("strategy", "selbench.strategies")
STRATEGIES.register("deita", "selbench.selection.deita:DeitaStrategy")
STRATEGIES.register("full", "selbench.selection.full:FullStrategy")
STRATEGIES.register("kcenter", "selbench.selection.kcenter:KCenterStrategy")
STRATEGIES.register("longest", "selbench.selection.longest:LongestStrategy")
STRATEGIES.register("random", "selbench.selection.random:RandomStrategy")
STRATEGIES.register("rds", "selbench.selection.rds:RdsStrategy")
STRATEGIES.register("strict-random", "selbench.selection.strict_random:StrictRandomStrategy")
STRATEGIES.register("cherry", "selbench.selection.cherry:CherryStrategy")
STRATEGIES.register("superfilter", "selbench.selection.superfilter:SuperfilterStrategy")

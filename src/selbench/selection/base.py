"""Strategy protocol and the `STRATEGIES` registry.

A strategy is a frozen dataclass of its parameters with three members:

* `score_requests()` -> {role: (scorer name, scorer options)}: the per-example scores it needs. They are
  computed once per (dataset, scorer config) by the cached "score" step and reused by every budget.
* `select(pool, budget, rng)` -> `Selection`: pure array logic, scores in, pool indices out (in selection
  order). No files, no models.
* `name`, `VERSION` (bumped when its output changes for the same inputs) and `uses_against` (whether it
  reads other selections, as the random baselines do).

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

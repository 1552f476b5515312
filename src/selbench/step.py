"""The step protocol: what every stage exposes so that something outside it can plan, cache and ship work.

A step is a small picklable object (a frozen dataclass of plain values: paths, names, options, never a
loaded model) with a `name`, a `VERSION` (bumped when its code changes its output bytes), a `config()`
and the `inputs()` it depends on. Its `key()` is the store key of its output and is computed without
running anything: inputs are content hashes that already exist on disk (a prepared dataset's manifest, a
model folder's file hashes, a selection manifest's `ids_sha256`), so `selbench run --dry-run` can say what
is cached and a Ray worker can run the step from the object alone. `run()` does the work inside the store
(`StepStore.run`): a finished step is never recomputed.

When an input does not exist yet (a dataset not prepared, a selection not made), `inputs()` raises
`InputsNotReady`: the planner then knows the step is still to run and that its key will be known once the
step it waits for has run. Steps hold no reference to each other; the plan (selbench.runner) holds the
edges. Pattern: datatrove's pipeline steps + executors (`pipeline/base.py`, `executor/local.py`).

Optional sharding protocol (`ShardedStep`; `is_sharded(step)` tells): a long step whose work is cut into
shards (`selbench.store.ShardProgress`: scoring a pool, generating, judging) can be spread over several
workers that share the store:

* `shard_plan(store) -> list[int]`: the numbers of the shards still to compute (empty once the step is
  finished). Loads no model: it reads only what the key reads plus the inputs' sizes (a pool's row count,
  the prompts), and it fixes the shard layout in the step's partial folder.
* `run_shards(store, numbers) -> dict`: computes and saves just those shards (skipping any already done),
  exactly as `run()` would (same cutting, same contents), and returns `ShardProgress.run`'s counts.

Workers given disjoint groups of numbers may run at once; afterwards `run()` finds every shard done and
only assembles the output (and charges the shards' recorded time to the step's cost record). The Ray
executor fans a long step out this way (`selbench.runner.executors.RayExecutor`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar

from selbench.hashing import canonical_json
from selbench.store import ShardProgress, StepResult, StepStore, step_key

_PLANNING: ContextVar[bool] = ContextVar("selbench_planning", default=False)


@contextlib.contextmanager
def planning() -> Iterator[None]:
    """Keys computed inside are for a plan (`--dry-run`, what is cached): an input that only the network could
    identify (a 🤗 hub dataset never prepared here) raises `InputsNotReady` instead of downloading."""
    token = _PLANNING.set(True)
    try:
        yield
    finally:
        _PLANNING.reset(token)


def is_planning() -> bool:
    return _PLANNING.get()


class InputsNotReady(Exception):
    """A step's inputs are not on disk yet (the step producing them has not run)."""


class Step:
    """Base of every stage's steps. Subclasses are frozen dataclasses and define `name`, `VERSION`,
    `config()`, `inputs()` and `compute()`.

    Attributes:
        name: the store's step name (folder under `steps/`).
        VERSION: bumped whenever the step's output bytes change for the same config and inputs.
        resources: what one run holds, for executors: `cpus`, `gpus`, `memory_gb`.
    """

    name: ClassVar[str]
    VERSION: ClassVar[int]
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 0, "memory_gb": 2}

    def config(self) -> dict[str, Any]:
        """Everything besides the inputs that can change the output bytes."""
        raise NotImplementedError

    def inputs(self) -> dict[str, Any]:
        """Content hashes of the inputs (raises `InputsNotReady` when one is not on disk yet)."""
        raise NotImplementedError

    def compute(self, tmp: Path, store: StepStore) -> Mapping[str, Any] | None:
        """Write the outputs into `tmp`; return stats (a `cost` entry becomes the cost record)."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short human label for plans and progress displays."""
        return self.name

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(config, inputs) exactly as the store hashes them (round-tripped through canonical JSON)."""
        return json.loads(canonical_json(self.config())), json.loads(canonical_json(self.inputs()))

    def key(self) -> str:
        """The store key of this step's output; loads no model and reads no pool."""
        config, inputs = self.key_parts()
        return step_key(self.name, self.VERSION, config, inputs)

    def lookup(self, store: StepStore | None = None) -> StepResult | None:
        """The finished output, or None (also None when the inputs are not ready)."""
        try:
            key = self.key()
        except InputsNotReady:
            return None
        return (store or StepStore()).lookup(self.name, key)

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        """The step's stored result, computed first if absent."""
        store = store or StepStore()
        config, inputs = self.key_parts()
        return store.run(self.name, self.VERSION, config, inputs, lambda tmp: self.compute(tmp, store), force=force)


class ShardedStep(Step):
    """A step whose long work is a `ShardProgress` of independent shards (the optional sharding protocol in
    this module's docstring). Subclasses define `shard_progress` and `shard_computer` and call them from
    `compute` (`shards.run(self.shard_computer(store, shards))`), so a shard is the same whoever computes it.
    """

    def shard_progress(self, store: StepStore) -> ShardProgress:
        """The step's shards in the store's partial folder (item count, shard size, format); loads no model."""
        raise NotImplementedError

    def shard_computer(self, store: StepStore, shards: ShardProgress) -> Callable[[int, range], Any]:
        """`compute(number, item_range) -> payload` for `shards.run`; loads its model on its first call only.
        It is called with ascending shard numbers."""
        raise NotImplementedError

    def shard_session(self) -> contextlib.AbstractContextManager[Any]:
        """What must be open while shards are computed (e.g. a judge served on 127.0.0.1); nothing by default.
        Entered by `run_shards` and by `compute`, only when shards are left to compute."""
        return contextlib.nullcontext()

    def shard_plan(self, store: StepStore | None = None) -> list[int]:
        """Numbers of the shards still to compute; empty when the step is finished."""
        store = store or StepStore()
        if self.lookup(store) is not None:
            return []
        return self.shard_progress(store).todo()

    def run_shards(self, store: StepStore | None, numbers: Iterable[int]) -> dict[str, int]:
        """Compute and save shards `numbers` (those not done yet); `run()` later assembles them."""
        store = store or StepStore()
        shards = self.shard_progress(store)
        numbers = list(numbers)
        opened = self.shard_session() if any(not shards.done(i) for i in numbers) else contextlib.nullcontext()
        with opened:
            return shards.run(self.shard_computer(store, shards), numbers=numbers, desc=f"{self.describe()} (shards)")


def is_sharded(step: Any) -> bool:
    """Whether `step` follows the sharding protocol (`shard_plan` and `run_shards`)."""
    return callable(getattr(step, "shard_plan", None)) and callable(getattr(step, "run_shards", None))

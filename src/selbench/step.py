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
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from selbench.hashing import canonical_json
from selbench.store import StepResult, StepStore, step_key


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

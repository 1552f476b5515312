"""Steps over today's stage functions (prepare, subsample, train) until each stage ships its own, and the
select step with its manifest published.

Each class follows `selbench.step.Step`: a frozen dataclass of plain values (paths, names, options) whose
`key()` is the key the stage function itself stores its output under, computed without running it (and
raising `InputsNotReady` while an input file is not there yet), and whose `run(store)` calls the function,
which is cached by the step store, and publishes the output where the next steps read it: the prepared
dataset folder, the selection manifest, or a symbolic link to the trained model's store folder (store entries
are immutable, so a link is as good as a copy and costs nothing for a 7B model).

Only `selbench.runner.plan` builds these; when the stages' own step classes land, the plan switches to them.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from selbench.selection.manifest import SelectStep
from selbench.step import InputsNotReady, Step
from selbench.store import StepResult, StepStore


def require(path: str | Path, what: str) -> Path:
    """`path`, or InputsNotReady when it does not exist yet."""
    path = Path(path)
    if not path.exists():
        raise InputsNotReady(f"{what} {path} does not exist yet")
    return path


def link_atomic(target: str | Path, link: str | Path) -> None:
    """Point `link` at `target` (a temporary link renamed over the old one: never a moment without it)."""
    link = Path(link)
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.tmp")
    os.symlink(Path(target).resolve(), tmp)
    try:
        os.replace(tmp, link)
    finally:
        if tmp.is_symlink():
            tmp.unlink()


def _stored(store: StepStore, step: str, key: str, cached: bool) -> StepResult:
    found = store.lookup(step, key)
    assert found is not None, f"{step} {key[:12]} finished but is not in the store {store.root}"
    found.cached = cached
    return found


@dataclass(frozen=True)
class PrepareStep(Step):
    """`selbench data prepare` into a run folder.

    Args:
        source: registered loader.
        input: file, `hf://` dataset or packaged pool name.
        out: the prepared dataset folder to publish (`data.parquet` + `manifest.json`).
        skip_invalid / max_per_task / max_chars / field_map: prepare's options (None = its defaults).
    """

    source: str
    input: str
    out: str
    skip_invalid: bool = False
    max_per_task: int | None = None
    max_chars: int | None = None
    field_map: tuple[tuple[str, str], ...] = ()

    name: ClassVar[str] = "prepare"
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 0, "memory_gb": 4}

    @property
    def VERSION(self) -> int:  # type: ignore[override]
        from selbench.data.prepare import VERSION

        return VERSION

    def _options(self) -> dict[str, Any]:
        from selbench.data.base import DEFAULT_MAX_CHARS, DEFAULT_MAX_PER_TASK

        return {"skip_invalid": self.skip_invalid,
                "max_per_task": self.max_per_task or DEFAULT_MAX_PER_TASK,
                "max_chars": self.max_chars or DEFAULT_MAX_CHARS,
                "field_map": dict(self.field_map)}

    def config(self) -> dict[str, Any]:
        from selbench.data.base import LoaderConfig
        from selbench.data.lengths import tokenizer_id

        options = self._options()
        loader = LoaderConfig(max_per_task=options["max_per_task"], field_map=tuple(sorted(self.field_map)),
                              max_chars=options["max_chars"])
        return {"source": self.source, "loader": loader.to_dict(), "skip_invalid": self.skip_invalid,
                "tokenizer": tokenizer_id()}

    def inputs(self) -> dict[str, Any]:
        from selbench.data.prepare import PACKAGED_INPUTS, resolve_input

        if not self.input.startswith("hf://") and PACKAGED_INPUTS.get(self.source) != self.input:
            require(self.input, "input file")
        return {"input": resolve_input(self.source, self.input)[2]}

    def describe(self) -> str:
        return f"prepare {Path(self.out).name}"

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        from selbench.data.prepare import prepare

        store = store or StepStore()
        manifest = prepare(self.source, self.input, self.out, store=store, **self._options())
        return _stored(store, self.name, manifest["step_key"], manifest["cached"])


@dataclass(frozen=True)
class SubsampleStep(Step):
    """A uniform random subsample of a prepared pool, kept in pool order (the grid's `limit`).

    Args:
        pool: the prepared pool folder.
        limit: examples to keep (the whole pool when it has no more).
        seed: numpy seed of the draw.
        out: the subsample's dataset folder to publish.
    """

    pool: str
    limit: int
    seed: int
    out: str

    name: ClassVar[str] = "subsample"
    VERSION: ClassVar[int] = 1
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 0, "memory_gb": 4}

    def config(self) -> dict[str, Any]:
        return {"limit": self.limit, "seed": self.seed}

    def inputs(self) -> dict[str, Any]:
        from selbench.data.schema import dataset_sha256

        require(Path(self.pool) / "manifest.json", "prepared pool")
        return {"dataset": dataset_sha256(self.pool)}

    def describe(self) -> str:
        return f"subsample {Path(self.out).name} ({self.limit})"

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        import numpy as np

        from selbench.cost import CostMeter
        from selbench.data.lengths import summarize, token_lengths, tokenizer_id
        from selbench.data.prepare import DATA_FILE
        from selbench.data.schema import read_examples, rows_sha256, write_examples

        with CostMeter(self.name) as meter:
            pool = read_examples(self.pool)
            n = min(self.limit, len(pool))
            keep = np.sort(np.random.default_rng(self.seed).choice(len(pool), size=n, replace=False))
            examples = [pool[int(i)] for i in keep]
            write_examples(examples, tmp / DATA_FILE)
            prompts = token_lengths([e.instruction if not e.input else f"{e.instruction}\n\n{e.input}" for e in examples])
            outputs = token_lengths([e.output for e in examples])
            meter.add_tokens(int(prompts.sum() + outputs.sum()))
        return {"n": n, "n_pool": len(pool), "n_dropped": 0, "sha256": rows_sha256(examples),
                "tokens": {"tokenizer": tokenizer_id(), "instruction_input": summarize(prompts),
                           "output": summarize(outputs)},
                "cost": meter.record.to_dict()}

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        from selbench.data.prepare import _place, read_manifest

        store = store or StepStore()
        result = super().run(store, force=force)
        pool = read_manifest(self.pool)
        manifest = {**result.stats, "source": pool.get("source"), "input": str(self.pool),
                    "subsample": {"limit": self.limit, "seed": self.seed, "pool_sha256": pool.get("sha256")},
                    "step_key": result.key, "cost": result.cost}
        _place(result.path, Path(self.out), manifest)
        return result


@dataclass(frozen=True)
class PublishedSelectStep(SelectStep):
    """The select step (`selbench.selection.manifest.SelectStep`, same key) that also writes its selection
    manifest to `out` (`run_selection`), where the steps after it read it.

    Args:
        out: the manifest to write (not part of the key).
    """

    out: str = field(default="", compare=False)

    def describe(self) -> str:
        return f"select {Path(self.out).stem}"

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        from selbench.selection.manifest import run_selection

        store = store or StepStore()
        done = run_selection(self.data, self.strategy, self.budget, self.out, params=dict(self.params),
                             seed=self.seed, against=list(self.against), store=store, prices=self.prices)
        return _stored(store, self.name, done.manifest["select_key"], done.cached)


@dataclass(frozen=True)
class TrainStep(Step):
    """`selbench train` on a selection; the model is published as a link to its store folder.

    Args:
        model: base model spec.
        data: the prepared dataset folder.
        selection: the selection manifest.
        train_config: the training settings (`TrainConfig`).
        out: the link to publish (the cell's model folder).
    """

    model: str
    data: str
    selection: str
    train_config: Any
    out: str

    name: ClassVar[str] = "train"
    resources: ClassVar[Mapping[str, float]] = {"cpus": 2, "gpus": 1, "memory_gb": 16}

    @property
    def VERSION(self) -> int:  # type: ignore[override]
        from selbench.training.train import VERSION

        return VERSION

    def _key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from selbench.assets.spec import parse_spec
        from selbench.training import trl_adapter
        from selbench.training.train import _key_parts, load_selection, load_tokenizer

        require(self.selection, "selection")
        spec = parse_spec(self.model)
        if spec.kind == "asset":
            from selbench.assets.convert import is_converted

            if not is_converted(spec.name):  # converting is loading the model: leave it to the run
                raise InputsNotReady(f"packaged model {spec.name} is not converted yet")
        _, data_sha, ids_sha = load_selection(self.data, self.selection)
        precision = trl_adapter.hardware(self.train_config)["precision"]
        return _key_parts(self.model, data_sha, ids_sha, self.train_config, load_tokenizer(self.model), precision)

    def config(self) -> dict[str, Any]:
        return self._key_parts()[0]

    def inputs(self) -> dict[str, Any]:
        return self._key_parts()[1]

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        from selbench.hashing import canonical_json

        config, inputs = self._key_parts()
        return json.loads(canonical_json(config)), json.loads(canonical_json(inputs))

    def describe(self) -> str:
        return f"train {Path(self.out).name}"

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        from selbench.training.train import train

        store = store or StepStore()
        result = train(self.model, self.data, self.selection, self.train_config, None, store)
        link_atomic(result["store_path"], self.out)
        return _stored(store, self.name, result["key"], result["cached"])

"""The stages' steps as a study runs them: outputs published into the run folder, keys that wait for models.

A plan's steps read their inputs from the run folder, where the step before them publishes its output:
prepared datasets (`PrepareStep`/`SubsampleStep` publish to `out` themselves), selection manifests
(`PublishedSelectStep`: the select step, then its manifest written by `run_selection`), and trained models
(`LinkedTrainStep`: a symbolic link to the store folder; store entries are immutable, so a link is as good as
a copy and costs nothing for a 7B model). Every class keeps its stage step's key.

Keys that depend on a model check first that the model is there and, for a packaged model, already converted
(converting is loading it): until then they raise `InputsNotReady` without reading any benchmark data, so a
dry run of a fresh study plans hundreds of evaluations in seconds and loads nothing. IFEval's prompt set is
read once per process, not once per step.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from selbench.evaluation.ifeval import IFEvalStep
from selbench.evaluation.llmbar import LLMBarStep
from selbench.hashing import canonical_json
from selbench.selection.manifest import SelectStep
from selbench.step import InputsNotReady, Step
from selbench.store import StepResult, StepStore
from selbench.training.train import TrainStep


def model_ready(spec: str) -> None:
    """InputsNotReady while the model a key needs is not on disk (not trained, or a packaged model not converted)."""
    from selbench.assets.spec import model_asset_names

    text = str(spec)
    if text in model_asset_names():
        from selbench.assets.convert import is_converted

        if not is_converted(text):
            raise InputsNotReady(f"packaged model {text} is not converted yet")
    elif not text.startswith("hf://") and ("/" in text or text.startswith(".")) and not Path(text).exists():
        raise InputsNotReady(f"model {text} does not exist yet")


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


def _canonical(config: dict[str, Any], inputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return json.loads(canonical_json(config)), json.loads(canonical_json(inputs))


@dataclass(frozen=True)
class PublishedSelectStep(SelectStep):
    """The select step (same key) that also writes its selection manifest to `out` (`run_selection`).

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
        found = store.lookup(self.name, done.manifest["select_key"])
        assert found is not None, f"select {done.manifest['select_key'][:12]} finished but is not in {store.root}"
        found.cached = done.cached
        return found


@functools.lru_cache(maxsize=8)
def _cached_tokenizer(model: str, tokenizer_sha256: str) -> Any:
    from selbench.training.train import load_tokenizer

    return load_tokenizer(model)


def _key_tokenizer(model: str) -> Any:
    """The tokenizer of `model`, loaded once per process and per tokenizer content (its files' hash)."""
    from selbench.assets.fingerprint import model_fingerprint

    return _cached_tokenizer(model, model_fingerprint(model)["tokenizer_sha256"])


@dataclass(frozen=True)
class LinkedTrainStep(TrainStep):
    """The train step (same key), its model published as a link to the store folder.

    Args:
        link: the cell's model path in the run folder (not part of the key).
    """

    link: str = field(default="", compare=False)

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        model_ready(self.model)  # the key loads the tokenizer: a packaged model must be converted first
        return super().key_parts()

    def tokenizer(self) -> Any:
        """The base model's tokenizer, loaded once per process for all the cells that train it (the key only
        reads its chat template)."""
        return _key_tokenizer(self.model)

    def describe(self) -> str:
        return f"train {Path(self.link).name}"

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        result = super().run(store, force=force)
        if self.link:
            link_atomic(result.path, self.link)
        return result


@functools.lru_cache(maxsize=8)
def _prompt_set(prompts: str | None) -> list[Any]:
    """IFEval's prompts, read once per process (checked when a step computes: building the checkers writes
    NLTK's data into the cache, which a dry run must not)."""
    from selbench.evaluation.ifeval import load_prompts

    return load_prompts(prompts)


@dataclass(frozen=True)
class RunIFEvalStep(IFEvalStep):
    """The IFEval step (same key): the model is checked first, the prompt set is read once per process."""

    def prompt_set(self) -> list[Any]:
        return _prompt_set(self.prompts)

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        from selbench.evaluation.ifeval import check_prompts

        check_prompts(self.prompt_set())  # a bad prompts file fails before any generation
        return super().compute(tmp, store)

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        if self.model is not None:
            from selbench.generation.cached import model_fingerprint_when_ready

            model_ready(self.model)
            model_fingerprint_when_ready(self.model)  # a hub model offline fails here, before the prompts
        inputs = self.inputs()
        return _canonical(self.config(), inputs)


@dataclass(frozen=True)
class RunLLMBarStep(LLMBarStep):
    """The LLMBar step (same key): the model is checked before LLMBar's files are read."""

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        model_ready(self.model)
        return super().key_parts()


@dataclass(frozen=True)
class OpenLLMSuiteStep(Step):
    """The OpenLLM tasks on one model: one `OpenLLMStep` per task (each cached on its own), the model loaded
    once for the tasks left to run. Its output gathers their metrics and per-document items.

    Args:
        model: model spec or folder.
        tasks: lm-eval tasks (aliases expanded).
        setting: "study" or "leaderboard".
        limit: documents per (sub)task.
        batch_size: lm-eval batch size.
    """

    model: str
    tasks: tuple[str, ...]
    setting: str = "study"
    limit: int | None = None
    batch_size: int = 8

    name: ClassVar[str] = "eval:openllm-suite"
    VERSION: ClassVar[int] = 1

    def task_steps(self) -> list[Any]:
        from selbench.evaluation.openllm import OpenLLMStep, parse_tasks

        return [OpenLLMStep(self.model, task, self.setting, self.limit, batch_size=self.batch_size)
                for task in parse_tasks(list(self.tasks))]

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        model_ready(self.model)
        return super().key_parts()

    def config(self) -> dict[str, Any]:
        return {"tasks": {step.task: step.config() for step in self.task_steps()}}

    def inputs(self) -> dict[str, Any]:
        return self.task_steps()[0].inputs()

    def describe(self) -> str:
        return f"openllm {Path(self.model).name}"

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        from selbench.cost import CostRecord
        from selbench.evaluation.base import read_items, write_items
        from selbench.store import write_json_atomic

        shared: dict[str, Any] = {}
        metrics, items, total = {}, [], CostRecord(step=self.name)
        for step in self.task_steps():
            result = dataclasses.replace(step, shared=shared).run(store)
            metrics[step.task] = json.loads((result.path / "metrics.json").read_text(encoding="utf-8"))["value"]
            items.extend(read_items(result.path))
            total = total + CostRecord.from_dict(result.cost)
        write_json_atomic(tmp / "metrics.json", metrics)
        write_items(tmp, items)
        record = total.to_dict()
        record["step"] = self.name
        return {"metrics": metrics, "cost": record}

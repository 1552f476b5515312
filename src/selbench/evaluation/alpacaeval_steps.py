"""AlpacaEval's judging and head-to-head as store steps: a finished judgement is never asked again.

Each step is a `selbench.step.Step`: a small picklable frozen dataclass (judge config, annotator, the texts to
judge) whose `key()` is computed without contacting the judge: the judge's
identity (model name and endpoint, not its limits or key), the annotator's request parameters and the sha256
of its prompt template (read from the installed alpaca_eval, so an upgrade that changes the prompt changes
the key), and the sha256 of every text list. `run()` computes inside `StepStore.run`; while it runs, every
answer is kept in the client's per-request cache, so a killed judgement resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from selbench.cost import CostMeter
from selbench.evaluation.alpacaeval_annotator import (
    ANNOTATOR,
    ANNOTATOR_SEED,
    annotate_pairs,
    judge_params,
    judge_template,
)
from selbench.evaluation.head_to_head import head_to_head
from selbench.hashing import sha256_json, sha256_text
from selbench.llm.client import LLMClient, LLMConfig
from selbench.step import Step
from selbench.store import StepResult, StepStore

PREFERENCES_FILE = "preferences.json"
RESULT_FILE = "head_to_head.json"


def _annotator_config(judge: LLMConfig, annotator: str) -> dict[str, Any]:
    return {
        "annotator": annotator,
        "judge": {"model": judge.model, "endpoint": judge.endpoint},
        "params": judge_params(annotator),
        "template_sha256": sha256_text(judge_template(annotator)),
        "switch_seed": ANNOTATOR_SEED,
    }


@dataclass(frozen=True)
class JudgePairsStep(Step):
    """Preferences of output_2 over output_1 per instruction (`annotate_pairs`), stored.

    Args:
        judge: the judge's endpoint and limits (only model and endpoint key the step).
        instructions: one instruction per pair.
        outputs_1: the reference outputs (AlpacaEval's output_1).
        outputs_2: the judged model's outputs (output_2).
        annotator: `weighted_alpaca_eval_gpt4_turbo` or `alpaca_eval_gpt4_turbo_fn`.
        randomize_order: alpaca_eval's seeded order switch (off when the caller judges both orders itself).
        progress: show a progress bar (not part of the key).
    """

    judge: LLMConfig
    instructions: tuple[str, ...]
    outputs_1: tuple[str, ...]
    outputs_2: tuple[str, ...]
    annotator: str = ANNOTATOR
    randomize_order: bool = True
    progress: bool = False

    name: ClassVar[str] = "judge"
    VERSION: ClassVar[int] = 1
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 0, "memory_gb": 1}

    def describe(self) -> str:
        return f"judge {len(self.instructions)} pairs with {self.judge.model}"

    def config(self) -> dict[str, Any]:
        return {**_annotator_config(self.judge, self.annotator), "randomize_order": self.randomize_order}

    def inputs(self) -> dict[str, Any]:
        return {
            "instructions": sha256_json(list(self.instructions)),
            "outputs_1": sha256_json(list(self.outputs_1)),
            "outputs_2": sha256_json(list(self.outputs_2)),
            "n": len(self.instructions),
        }

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        client = LLMClient(self.judge, store=store)
        with CostMeter(f"{self.name}:alpacaeval") as meter:
            prefs = annotate_pairs(client, self.instructions, self.outputs_1, self.outputs_2,
                                   randomize_order=self.randomize_order, progress=self.progress,
                                   annotator=self.annotator)
            client.charge(meter)
        (tmp / PREFERENCES_FILE).write_text(json.dumps(prefs) + "\n", encoding="utf-8")
        return {"n": len(prefs), "unparsed": sum(p is None for p in prefs), "judge": client.stats.to_dict(),
                "cost": meter.record.to_dict()}

    @staticmethod
    def preferences(result: StepResult) -> list[float | None]:
        return json.loads((result.path / PREFERENCES_FILE).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class HeadToHeadStep(Step):
    """`head_to_head` of a selected model's outputs against the random baselines' outputs, stored.

    Args:
        judge: the judge's endpoint and limits (only model and endpoint key the step).
        instructions: the judged instructions.
        selected_outputs: the selected-data model's outputs.
        random_outputs: (name, outputs) of each random-baseline model, names unique.
        seed: seeds the per-instruction choice of opponent.
        full_per_seed: also judge against every random model on every instruction.
        protocol: "both" or "study" (see `selbench.evaluation.head_to_head`).
        annotator: `weighted_alpaca_eval_gpt4_turbo` or `alpaca_eval_gpt4_turbo_fn`.
        progress: show a progress bar (not part of the key).
    """

    judge: LLMConfig
    instructions: tuple[str, ...]
    selected_outputs: tuple[str, ...]
    random_outputs: tuple[tuple[str, tuple[str, ...]], ...]
    seed: int = 0
    full_per_seed: bool = False
    protocol: str = "both"
    annotator: str = ANNOTATOR
    progress: bool = False

    name: ClassVar[str] = "head-to-head"
    VERSION: ClassVar[int] = 1
    resources: ClassVar[Mapping[str, float]] = {"cpus": 1, "gpus": 0, "memory_gb": 1}

    def describe(self) -> str:
        return f"head-to-head on {len(self.instructions)} instructions judged by {self.judge.model}"

    def config(self) -> dict[str, Any]:
        return {**_annotator_config(self.judge, self.annotator), "seed": self.seed,
                "full_per_seed": self.full_per_seed, "protocol": self.protocol}

    def inputs(self) -> dict[str, Any]:
        return {
            "instructions": sha256_json(list(self.instructions)),
            "selected": sha256_json(list(self.selected_outputs)),
            "randoms": [[name, sha256_json(list(outputs))] for name, outputs in self.random_outputs],
            "n": len(self.instructions),
        }

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        client = LLMClient(self.judge, store=store)
        with CostMeter(f"{self.name}:alpacaeval") as meter:
            result = head_to_head(
                self.instructions, self.selected_outputs, {name: list(o) for name, o in self.random_outputs},
                client, seed=self.seed, progress=self.progress, full_per_seed=self.full_per_seed,
                protocol=self.protocol, annotator=self.annotator,
            )
            client.charge(meter)
        (tmp / RESULT_FILE).write_text(json.dumps(result, sort_keys=True) + "\n", encoding="utf-8")
        return {"n": result["n"], "unparsed": result["unparsed"], "win_rate": result["win_rate"],
                "judge": client.stats.to_dict(), "cost": meter.record.to_dict()}

    @staticmethod
    def result(stored: StepResult) -> dict[str, Any]:
        return json.loads((stored.path / RESULT_FILE).read_text(encoding="utf-8"))

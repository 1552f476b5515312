"""The grid's `benchmarks` section: one validated options model per benchmark (pydantic, unknown keys refused)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Spec(BaseModel):
    """Base of every grid section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class IFEvalSpec(Spec):
    """Args:
    limit: the first K of the 541 prompts (None: all).
    max_new_tokens: generation length (1024 as in the study).
    batch_size: prompts per generation batch.
    prompts: another prompt set (JSONL path or `hf://google/IFEval`); None = the packaged 541.
    """

    limit: int | None = Field(default=None, ge=1)
    max_new_tokens: int = Field(default=1024, ge=1)
    batch_size: int = Field(default=8, ge=1)
    prompts: str | None = None


class LLMBarSpec(Spec):
    """Args:
    subset: `natural` or `adversarial`.
    limit: the first K instances of each set.
    strategy: prompt strategy (LLMBar's `vanilla_rules` by default).
    method: `generate` (the reference protocol) or `logprob`.
    batch_size: prompts per forward batch.
    data_dir: LLMBar's data folder (None: the shared copy, else the hub).
    """

    subset: Literal["natural", "adversarial"] = "natural"
    limit: int | None = Field(default=None, ge=1)
    strategy: str = "vanilla_rules"
    method: Literal["generate", "logprob"] = "generate"
    batch_size: int = Field(default=8, ge=1)
    data_dir: str | None = None


class JudgeSpec(Spec):
    """Args:
    model: the judge: an API model name (with `base_url`, or OpenAI's API) or a model spec served locally
        by `selbench serve` for the run (when `base_url` is None and the name is a packaged asset, folder
        or `hf://` spec).
    base_url: an OpenAI-compatible endpoint ending in /v1.
    api_key_env: environment variable holding the API key (sent only as the bearer token).
    workers: concurrent judge requests.
    """

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    workers: int = Field(default=4, ge=1)


class AlpacaEvalSpec(Spec):
    """The AlpacaEval head-to-head: each strategy's model against the random models of its cell (study Fig. 2).

    Args:
        judge: who judges.
        limit: the first K of the 805 instructions.
        max_new_tokens: generation length.
        protocol: `both` orders averaged, or `study` (once, alpaca_eval's seeded switch).
        annotator: the weighted logprob annotator or the study's `alpaca_eval_gpt4_turbo_fn`.
        seed: seeds the per-instruction choice of random opponent.
    """

    judge: JudgeSpec
    limit: int | None = Field(default=None, ge=1)
    max_new_tokens: int = Field(default=512, ge=1)
    protocol: Literal["both", "study"] = "both"
    annotator: str | None = None
    seed: int = Field(default=0, ge=0)


class OpenLLMSpec(Spec):
    """Args:
    tasks: lm-eval tasks (default: the study's seven).
    setting: `study` or `leaderboard` shots and metrics.
    limit: documents per task.
    batch_size: lm-eval batch size.
    """

    tasks: list[str] = Field(default_factory=lambda: ["mmlu", "arc_easy", "arc_challenge", "winogrande",
                                                      "truthfulqa_mc1", "truthfulqa_mc2", "hellaswag"])
    setting: Literal["study", "leaderboard"] = "study"
    limit: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=8, ge=1)


class BenchmarksSpec(Spec):
    """Benchmarks to run on every cell's model (and once on the base model); an omitted one is not run."""

    ifeval: IFEvalSpec | None = None
    llmbar: LLMBarSpec | None = None
    alpacaeval: AlpacaEvalSpec | None = None
    openllm: OpenLLMSpec | None = None

    def names(self) -> list[str]:
        return [name for name in ("ifeval", "llmbar", "alpacaeval", "openllm") if getattr(self, name) is not None]

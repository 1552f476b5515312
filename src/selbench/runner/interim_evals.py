"""Evaluation steps over today's benchmark functions (IFEval, LLMBar, AlpacaEval head-to-head, OpenLLM).

Each is a `selbench.step.Step` whose key is the benchmark's settings plus the content fingerprint of the model
it evaluates (`InputsNotReady` until the model folder exists), and whose output folder holds the headline
metrics in its stats and the per-item scores in `items.jsonl` (`{"item", "score"}` rows, one per item, and
`opponent_seed` for the head-to-head), which the run's `items.parquet` collects for paired statistics. Generation, judging and LLMBar keep their own caches
inside the store, so a re-run of an evaluation whose step was lost regenerates nothing.

Only `selbench.runner.plan` builds these; when the stages' own step classes land, the plan switches to them.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from selbench.hashing import canonical_json
from selbench.step import InputsNotReady, Step
from selbench.store import StepStore, write_text_atomic

ITEMS_FILE = "items.jsonl"


def model_key(spec: str) -> dict[str, str]:
    """The content fingerprint of a model spec, or InputsNotReady while its folder is not written yet."""
    from selbench.assets.fingerprint import model_fingerprint
    from selbench.assets.spec import parse_spec

    text = str(spec)
    if not text.startswith("hf://") and ("/" in text or text.startswith(".")) and not Path(text).exists():
        raise InputsNotReady(f"model {text} does not exist yet")
    parsed = parse_spec(text)
    if parsed.kind == "asset":
        from selbench.assets.convert import is_converted

        if not is_converted(parsed.name):  # converting is loading the model: leave it to the run
            raise InputsNotReady(f"packaged model {parsed.name} is not converted yet")
    return model_fingerprint(text)


def write_items(tmp: Path, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(tmp / ITEMS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_items(folder: str | Path) -> list[dict[str, Any]]:
    path = Path(folder) / ITEMS_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


@functools.lru_cache(maxsize=16)
def _prompts_sha256(prompts: str | None, limit: int | None) -> str:
    """sha256 of the IFEval prompt texts a step answers (read once per process)."""
    from selbench.evaluation.ifeval_data import load_prompts
    from selbench.hashing import sha256_json

    loaded = load_prompts(prompts)
    return sha256_json([p.prompt for p in (loaded[:limit] if limit else loaded)])


@functools.lru_cache(maxsize=8)
def _llmbar_hashes(subset: str, data_dir: str | None) -> dict[str, str]:
    from selbench.evaluation.llmbar import load_llmbar

    return load_llmbar(subset, data_dir)[1]


class _EvalStep(Step):
    benchmark: ClassVar[str]
    resources: ClassVar[Mapping[str, float]] = {"cpus": 2, "gpus": 1, "memory_gb": 16}

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        # The model first: while it is not trained yet, the benchmark's data need not be read at all.
        inputs = self.inputs()
        config = self.config()
        return json.loads(canonical_json(config)), json.loads(canonical_json(inputs))

    def describe(self) -> str:
        return f"{self.benchmark} {Path(str(self.model)).name}"


@dataclass(frozen=True)
class IFEvalStep(_EvalStep):
    """IFEval on a model (greedy generation, the official strict/loose scoring).

    Args:
        model: model spec or folder.
        limit: the first K prompts.
        max_new_tokens / batch_size: generation settings.
        prompts: prompt set (None: the packaged 541).
    """

    model: str
    limit: int | None = None
    max_new_tokens: int = 1024
    batch_size: int = 8
    prompts: str | None = None

    name: ClassVar[str] = "eval-ifeval"
    benchmark: ClassVar[str] = "ifeval"
    VERSION: ClassVar[int] = 1

    def _generation(self) -> Any:
        from selbench.generation.base import GenerationConfig

        return GenerationConfig.greedy(max_new_tokens=self.max_new_tokens, batch_size=self.batch_size)

    def config(self) -> dict[str, Any]:
        return {"limit": self.limit, "generation": self._generation().to_dict(), "prompts": self.prompts or "packaged",
                "prompts_sha256": _prompts_sha256(self.prompts, self.limit)}

    def inputs(self) -> dict[str, Any]:
        return {"model": model_key(self.model)}

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        from selbench.cost import CostMeter
        from selbench.evaluation.ifeval import evaluate

        with CostMeter(self.name) as meter:
            result = evaluate(model=self.model, prompts=self.prompts, limit=self.limit, generation=self._generation(),
                              out=tmp, store=store)
        rows = json.loads((tmp / "scores.json").read_text(encoding="utf-8"))["rows"]
        # One score per prompt: followed all its instructions, strictly (IFEval's prompt-level strict accuracy).
        write_items(tmp, [{"item": str(r["key"]), "score": float(all(r["strict"]))} for r in rows])
        metrics = {k: result[k] for k in ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose")}
        return {"metrics": metrics, "n": result["n"], "cost": meter.record.to_dict()}


@dataclass(frozen=True)
class LLMBarStep(_EvalStep):
    """LLMBar with the model as the evaluator (its accuracy over both output orders).

    Args:
        model: model spec or folder.
        subset / strategy / method / limit / batch_size / data_dir: `selbench eval llmbar`'s options.
    """

    model: str
    subset: str = "natural"
    strategy: str = "vanilla_rules"
    method: str = "generate"
    limit: int | None = None
    batch_size: int = 8
    data_dir: str | None = None

    name: ClassVar[str] = "eval-llmbar"
    benchmark: ClassVar[str] = "llmbar"
    VERSION: ClassVar[int] = 1

    def config(self) -> dict[str, Any]:
        from selbench.evaluation.llmbar import VERSION

        hashes = _llmbar_hashes(self.subset, self.data_dir)
        return {"subset": self.subset, "strategy": self.strategy, "method": self.method, "limit": self.limit,
                "batch_size": self.batch_size, "data": hashes, "llmbar_version": VERSION}

    def inputs(self) -> dict[str, Any]:
        return {"model": model_key(self.model)}

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        from selbench.cost import CostMeter
        from selbench.evaluation.llmbar import evaluate

        with CostMeter(self.name) as meter:
            result = evaluate(self.model, self.subset, strategy=self.strategy, method=self.method, limit=self.limit,
                              batch_size=self.batch_size, data_dir=self.data_dir, store=store)
        records = [json.loads(line) for line in
                   (Path(result["path"]) / "results.jsonl").read_text(encoding="utf-8").splitlines() if line]
        counters: dict[str, int] = {}
        items = []
        for record in records:
            index = counters[record["set"]] = counters.get(record["set"], -1) + 1
            correct = [record["choice_original"] == record["label"], record["choice_swapped"] == record["label"]]
            items.append({"item": f"{record['set']}/{index}", "score": sum(correct) / 2})
        write_items(tmp, items)
        metrics = {k: result[k] for k in ("accuracy", "agreement") if result.get(k) is not None}
        return {"metrics": metrics, "n": result.get("n"), "unparsed": result.get("unparsed"),
                "cost": meter.record.to_dict()}


@dataclass(frozen=True)
class HeadToHeadStep(_EvalStep):
    """AlpacaEval head-to-head: a model against the random-baseline models of its cell, one judge.

    Args:
        model: the strategy's model.
        randoms: the random-baseline models.
        random_seeds: their seeds, in the same order (for the items' `opponent_seed`; not part of the key).
        judge: API model name, or a local model spec served on 127.0.0.1 for the step (when `judge_base_url`
            is None and the name is a packaged asset, a folder or `hf://`).
        judge_base_url / judge_api_key_env / judge_workers: the endpoint.
        limit / max_new_tokens / protocol / annotator / seed: `selbench eval head-to-head`'s options.
    """

    model: str
    randoms: tuple[str, ...]
    random_seeds: tuple[int, ...]
    judge: str
    judge_base_url: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    judge_workers: int = 4
    limit: int | None = None
    max_new_tokens: int = 512
    protocol: str = "both"
    annotator: str | None = None
    seed: int = 0

    name: ClassVar[str] = "eval-head-to-head"
    benchmark: ClassVar[str] = "alpacaeval"
    VERSION: ClassVar[int] = 1

    def _local_judge(self) -> bool:
        if self.judge_base_url is not None:
            return False
        from selbench.assets.spec import model_asset_names

        return self.judge.startswith("hf://") or self.judge in model_asset_names() or Path(self.judge).is_dir()

    def config(self) -> dict[str, Any]:
        from selbench.evaluation.alpacaeval import ANNOTATOR

        return {"judge": self.judge, "limit": self.limit, "max_new_tokens": self.max_new_tokens,
                "protocol": self.protocol, "annotator": self.annotator or ANNOTATOR, "seed": self.seed}

    def inputs(self) -> dict[str, Any]:
        inputs: dict[str, Any] = {"model": model_key(self.model), "randoms": [model_key(r) for r in self.randoms]}
        if self._local_judge():
            inputs["judge"] = model_key(self.judge)
        return inputs

    @contextlib.contextmanager
    def _endpoint(self) -> Iterator[tuple[str, str | None]]:
        """(judge model name, base URL): a local judge is served on 127.0.0.1 while the step runs."""
        if not self._local_judge():
            yield self.judge, self.judge_base_url
            return
        from selbench.assets import load_model
        from selbench.generation.server import BackgroundServer, create_app

        model, tokenizer = load_model(self.judge)
        with BackgroundServer(create_app(model, tokenizer, self.judge)) as server:
            yield self.judge, server.base_url

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        from selbench.cost import CostMeter
        from selbench.evaluation.alpacaeval import ANNOTATOR, evaluate_head_to_head

        with CostMeter(self.name) as meter, self._endpoint() as (judge, base_url):
            result = evaluate_head_to_head(
                self.model, list(self.randoms), judge=judge, judge_base_url=base_url, limit=self.limit,
                seed=self.seed, max_new_tokens=self.max_new_tokens, judge_workers=self.judge_workers,
                protocol=self.protocol, annotator=self.annotator or ANNOTATOR)
        # Preferences are in [1, 2], 2 = the strategy's output (output_2) preferred: score = its win share.
        seed_of = {str(path): seed for path, seed in zip(self.randoms, self.random_seeds, strict=True)}
        write_items(tmp, [{"item": str(i), "score": float(p) - 1.0, "opponent_seed": seed_of.get(opponent)}
                          for i, (p, opponent) in enumerate(zip(result["preferences"], result["opponents"], strict=True))
                          if p is not None])
        judge_cost = result.get("cost") or {}
        record = meter.record.to_dict()
        for name in ("api_input_tokens", "api_output_tokens", "api_usd"):
            record[name] = judge_cost.get(name, 0)
        record["usd"] = record["node_usd"] + record["api_usd"]
        metrics = {k: result[k] for k in ("win_rate", "mean_adjusted_win_rate") if result.get(k) is not None}
        return {"metrics": metrics, "n": result.get("n"), "unparsed": result.get("unparsed"),
                "per_seed": result.get("per_seed"), "cost": record}


@dataclass(frozen=True)
class OpenLLMStep(_EvalStep):
    """lm-eval-harness tasks (each task cached on its own inside the store).

    Args:
        model: model spec or folder.
        tasks / setting / limit / batch_size: `selbench eval openllm`'s options.
    """

    model: str
    tasks: tuple[str, ...]
    setting: str = "study"
    limit: int | None = None
    batch_size: int = 8

    name: ClassVar[str] = "eval-openllm"
    benchmark: ClassVar[str] = "openllm"
    VERSION: ClassVar[int] = 1

    def config(self) -> dict[str, Any]:
        return {"tasks": list(self.tasks), "setting": self.setting, "limit": self.limit, "batch_size": self.batch_size}

    def inputs(self) -> dict[str, Any]:
        return {"model": model_key(self.model)}

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        from selbench.cost import CostMeter
        from selbench.evaluation.openllm import evaluate

        with CostMeter(self.name) as meter:
            result = evaluate(self.model, list(self.tasks), setting=self.setting, limit=self.limit,
                              batch_size=self.batch_size, store=store)
        write_items(tmp, [])
        return {"metrics": {task: result[task] for task in self.tasks}, "cost": meter.record.to_dict()}

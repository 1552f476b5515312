"""Time and dollars of what is left of a plan, from this machine's measured throughputs.

Throughputs come from the cost records (`meta.json`) of steps that already ran in the store: training tokens/s
(`train` stats: train_tokens / train_seconds), generation tokens/s (`generate`: prompt + new tokens / wall
seconds), scoring tokens/s per scorer (`score`), prepare tokens/s. Records of the grid's own base model are
preferred; records of other models are scaled by parameter count (a model twice as large is taken to be twice
as slow, the first-order law of dense transformers). Where nothing was measured on this kind of device, the
documented defaults below apply (`DEFAULTS`). Dollars are the price sheet's node rate per hour times the
seconds, plus API tokens times the judge's list price.

Work per step, all documented assumptions:

* training: selected examples x mean tokens per example (from the dataset manifest, else 300) capped at
  `max_length`, x epochs, or `max_steps` x effective batch x mean tokens when that is smaller;
* generation: prompts x (max_new_tokens / 2 generated + 150 prompt tokens, prefilled `prefill_speedup`
  times faster);
* LLMBar: instances x 2 orders x (600 prompt + 32 generated tokens); OpenLLM: documents x (shots + 1) x 4
  choices x 100 tokens of forward passes (prefill speed);
* scoring with a model: one forward pass over the pool's tokens (3x faster than a training step, which also
  runs the backward pass); the length scorer is free; a judge-rated scorer (AlpaGasus): one request per rated
  example (its tokens + 150 of prompt in, 3 tokens out with the study's prompt, else 60) at the judge's list
  price, 0.25 s each over the scorer's concurrent workers;
* head-to-head: each model's outputs once, plus judge calls (2 orders, or 1 with the study protocol) of 1,000
  input and 1 output token (the logprob annotator) or 60 (the function-calling one);
* a strategy the registry does not know yet (dry runs) is charged its study counterpart's scoring
  (`UNREGISTERED_SCORING`).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selbench.assets.spec import is_local_model
from selbench.runner.plan import Node, NodeStatus, Plan
from selbench.store import StepStore

log = logging.getLogger(__name__)

# Documented defaults, per device kind, for a model of `reference_params` parameters, per node of the price
# sheet (the study's node: 8 A6000 GPUs; `prefill_speedup`: prompt tokens per generated token per second).
DEFAULTS: dict[str, dict[str, float]] = {
    # SmolLM2-135M on this project's 2-core CPU machine kind (../shared/env/README.md, fp32, 2 threads): LoRA
    # SFT at 256 tokens 105 tokens/s, greedy generation batch 8 60 tokens/s, forward passes ~600 tokens/s.
    "cpu": {"reference_params": 135e6, "train_tokens_per_s": 105.0, "generate_tokens_per_s": 60.0,
            "prefill_speedup": 10.0},
    # LLaMA-2-7B on an 8-GPU A6000/A100-class node (bf16, data parallel; HF generate, batch 8 per GPU).
    "cuda": {"reference_params": 7e9, "train_tokens_per_s": 10_000.0, "generate_tokens_per_s": 1_600.0,
             "prefill_speedup": 50.0},
}
FORWARD_SPEEDUP = 3.0  # forward-only tokens per training token, per second
DEFAULT_TOKENS_PER_EXAMPLE = 300.0
# Pools that are not prepared yet: the sizes of the public releases the study used.
KNOWN_POOL_SIZES = {"alpaca": 52_002, "dolly": 15_011, "evol": 143_000, "flan": 100_000, "sharegpt": 16_578}
DEFAULT_POOL_SIZE = 10_000
BENCHMARK_SIZES = {"ifeval": 541, "alpacaeval": 805, "llmbar-natural": 100, "llmbar-adversarial": 319}
OPENLLM_DOCS = {"mmlu": 14_042, "arc_easy": 2_376, "arc_challenge": 1_172, "winogrande": 1_267,
                "truthfulqa_mc1": 817, "truthfulqa_mc2": 817, "hellaswag": 10_042}
STUDY_RATED = 40_000  # the study rated a seeded 40,000 of each pool with AlpaGasus (its sampler)
# Study strategies not registered in this installation: forward passes over the pool (x pool tokens), and
# API calls per pool example (judge, input tokens, output tokens).
UNREGISTERED_SCORING: dict[str, dict[str, Any]] = {
    "cherry": {"forward_passes": 2.0, "train_examples": 1000},  # IFD: with and without the instruction
    "superfilter": {"forward_passes": 2.0, "small_model": True},
    "deita": {"forward_passes": 2.0},  # complexity + quality scorers
    "alpagasus": {"api": ("gpt-3.5-turbo", 400, 30)},  # one rating request per example
}


@dataclass
class Throughputs:
    """Tokens per second on this machine for the grid's base model, and where each number came from."""

    device: str
    train_tokens_per_s: float
    generate_tokens_per_s: float
    prefill_speedup: float = 40.0
    score_tokens_per_s: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)


def model_params(spec: str) -> float:
    """Parameter count of a model spec, without loading it: its config.json when it is a folder, else the
    size in its name (`Llama-2-7b` -> 7e9, `smollm2-135m` -> 1.35e8), else 1e9."""
    path = Path(spec)
    config = path / "config.json"
    if config.is_file():
        try:
            c = json.loads(config.read_text(encoding="utf-8"))
            h, layers, vocab = c["hidden_size"], c["num_hidden_layers"], c.get("vocab_size", 32000)
            inter = c.get("intermediate_size", 4 * h)
            return float(layers * (4 * h * h + 3 * h * inter) + vocab * h)
        except (KeyError, TypeError, ValueError):
            pass
    if (path / "adapter_config.json").is_file():
        try:
            base = json.loads((path / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
            return model_params(str(base))
        except (KeyError, ValueError):
            pass
    found = re.findall(r"(\d+(?:\.\d+)?)\s*([mMbB])(?![a-zA-Z])", path.name or str(spec))
    if found:
        number, unit = found[-1]
        return float(number) * (1e9 if unit.lower() == "b" else 1e6)
    return 1e9


def _device() -> str:
    from selbench.cost.meter import detect_device

    return detect_device()[0]


def measure_throughputs(store: StepStore, model: str, device: str | None = None) -> Throughputs:
    """This machine's throughputs for `model`, from earlier cost records in `store` (else `DEFAULTS`)."""
    device = device or _device()
    target = model_params(model)
    defaults = DEFAULTS.get(device, DEFAULTS["cpu"])
    scale = defaults["reference_params"] / target
    out = Throughputs(device, defaults["train_tokens_per_s"] * scale, defaults["generate_tokens_per_s"] * scale,
                      defaults["prefill_speedup"], sources={"train": "default", "generate": "default"})
    train_runs: list[tuple[float, float, float]] = []  # tokens, seconds, params
    gen_tokens = gen_seconds = 0.0
    scores: dict[str, list[float]] = {}
    for entry in store.entries() if store.steps_dir.is_dir() else ():
        cost, stats = entry.cost, entry.stats
        if cost.get("device_kind", "cpu") != device:
            continue
        if entry.step == "train" and stats.get("train_seconds"):
            spec = _train_model(entry.path)
            params = target if spec == model else model_params(spec) if spec else target
            train_runs.append((float(stats.get("train_tokens") or 0), float(stats["train_seconds"]), params))
        elif entry.step == "generate" and cost.get("wall_seconds"):
            gen_tokens += float(stats.get("new_tokens") or 0) + float(stats.get("prompt_tokens") or 0) / out.prefill_speedup
            gen_seconds += float(cost["wall_seconds"])
        elif entry.step == "score" and cost.get("wall_seconds") and cost.get("tokens"):
            scorer = entry.meta.get("config", {}).get("scorer", "?")
            scores.setdefault(scorer, []).append(float(cost["tokens"]) / float(cost["wall_seconds"]))
    if train_runs:
        # Scaled to the target model: tokens x params / seconds is the invariant.
        total = sum(t * p for t, _, p in train_runs) / sum(s for _, s, _ in train_runs)
        out.train_tokens_per_s = total / target
        out.sources["train"] = f"measured ({len(train_runs)} runs)"
    if gen_seconds > 0 and gen_tokens > 0:
        out.generate_tokens_per_s = gen_tokens / gen_seconds
        out.sources["generate"] = "measured"
    out.score_tokens_per_s = {name: sum(v) / len(v) for name, v in scores.items()}
    return out


def _train_model(entry: Path) -> str | None:
    try:
        return json.loads((entry / "train_config.json").read_text(encoding="utf-8")).get("model")
    except (OSError, ValueError):
        return None


@dataclass
class Estimate:
    """Seconds and dollars of each node still to run, and the totals."""

    seconds: dict[str, float]
    usd: dict[str, float]
    throughputs: Throughputs
    extra_seconds: float = 0.0
    extra_usd: float = 0.0

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values()) + self.extra_seconds

    @property
    def total_usd(self) -> float:
        return sum(self.usd.values()) + self.extra_usd


class _Work:
    def __init__(self, plan: Plan, tp: Throughputs) -> None:
        self.plan = plan
        self.tp = tp
        self.generated: set[str] = set()

    def dataset_facts(self, dataset: str, *, pool: bool = False) -> tuple[float, float]:
        """(size, mean tokens per example) of a dataset (`pool`: before its subsample): its manifest, else the
        known release sizes."""
        spec = self.plan.grid.datasets[dataset]
        manifest = self.plan.run_dir / "data" / ("_pool" if pool and spec.limit else "") / dataset / "manifest.json"
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            tokens = m.get("tokens", {})
            mean = float(tokens["instruction_input"]["mean"]) + float(tokens["output"]["mean"])
            return float(m["n"]), mean
        except (OSError, ValueError, KeyError, TypeError):
            n = KNOWN_POOL_SIZES.get(spec.source, DEFAULT_POOL_SIZE)
            return float(min(n, spec.limit) if spec.limit and not pool else n), DEFAULT_TOKENS_PER_EXAMPLE

    def train_seconds(self, dataset: str, n_selected: float, config: Any) -> float:
        _, mean = self.dataset_facts(dataset)
        per_example = min(mean + 20.0, float(config.max_length))  # + chat template tokens
        tokens = n_selected * per_example * config.epochs
        if config.max_steps > 0:
            tokens = min(tokens, config.max_steps * config.effective_batch_size * per_example)
        return tokens / self.tp.train_tokens_per_s

    def generate_seconds(self, n_prompts: float, max_new_tokens: int, prompt_tokens: float = 150.0) -> float:
        new = n_prompts * max_new_tokens / 2.0
        return (new + n_prompts * prompt_tokens / self.tp.prefill_speedup) / self.tp.generate_tokens_per_s

    def prefill_seconds(self, tokens: float) -> float:
        return tokens / (self.tp.generate_tokens_per_s * self.tp.prefill_speedup)

    def node(self, node: Node) -> tuple[float, float]:
        """(seconds, API dollars) of one node."""
        step = node.step
        if node.kind in ("prepare", "subsample"):
            dataset = Path(step.out).name
            n, mean = self.dataset_facts(dataset, pool=True)
            return n * mean / 200_000.0 + 5.0, 0.0  # GPT-2 BPE counting ~200k tokens/s
        if node.kind == "score":
            n, mean = self.dataset_facts(Path(step.data).name)
            if step.scorer == "length":
                return n / 50_000.0 + 1.0, 0.0
            options = dict(step.options)
            if "judge" in options and "model" not in options:  # one rating request per example (AlpaGasus)
                rated = min(n, options.get("pool_size") or (STUDY_RATED if options.get("preset") == "study" else n))
                out = options.get("max_tokens") or (3 if options.get("preset") == "study" else 60)
                if is_local_model(options["judge"], options.get("judge_base_url")):  # served here by selbench serve
                    return (self.prefill_seconds(rated * (mean + 150))
                            + rated * out / self.tp.generate_tokens_per_s + 10.0), 0.0
                price = price_sheet(self.plan.grid.prices).api_price(options["judge"])
                usd = rated * ((mean + 150) * price.input_per_1m + out * price.output_per_1m) / 1e6
                return rated * 0.25 / max(1, int(options.get("judge_workers") or 4)), usd
            tps = self.tp.score_tokens_per_s.get(step.scorer, self.tp.train_tokens_per_s * FORWARD_SPEEDUP)
            return n * mean / tps, 0.0
        if node.kind == "select":
            return 2.0, 0.0
        if node.kind == "train":
            cell = next(c for c in self.plan.cells if c.train == node.id)
            n = cell.budget if cell.budget is not None else self.dataset_facts(cell.dataset)[0]
            return self.train_seconds(cell.dataset, n, step.train_config), 0.0
        return self.evaluation(node)

    def evaluation(self, node: Node) -> tuple[float, float]:
        step, grid = node.step, self.plan.grid
        if node.benchmark == "ifeval":
            n = step.limit or BENCHMARK_SIZES["ifeval"]
            max_new_tokens = step.generation.max_new_tokens if step.generation is not None else 1024
            return self.generate_seconds(n, max_new_tokens), 0.0
        if node.benchmark == "llmbar":
            n = step.limit or BENCHMARK_SIZES[f"llmbar-{step.subset}"]
            if step.subset == "adversarial" and step.limit:
                n = 4 * step.limit
            return 2 * n * 32 / self.tp.generate_tokens_per_s + self.prefill_seconds(2 * n * 600), 0.0
        if node.benchmark == "openllm":
            docs = sum(min(OPENLLM_DOCS.get(t, 1000), step.limit or 10**9) for t in step.tasks)
            return self.prefill_seconds(docs * 6 * 4 * 100), 0.0
        assert node.benchmark == "alpacaeval", node.benchmark
        n = step.limit or BENCHMARK_SIZES["alpacaeval"]
        seconds = 0.0
        for model in (step.model, *step.randoms):
            if model not in self.generated:
                self.generated.add(model)
                seconds += self.generate_seconds(n, step.max_new_tokens, 60.0)
        calls = n * (1 if step.protocol == "study" else 2)
        out_tokens = 60 if (step.annotator or "").endswith("_fn") else 1
        if is_local_model(step.judge, step.judge_base_url):
            return seconds + self.prefill_seconds(calls * 1000) + calls * out_tokens / self.tp.generate_tokens_per_s, 0.0
        price = price_sheet(grid.prices).api_price(step.judge)
        return seconds + calls * 0.05, calls * (1000 * price.input_per_1m + out_tokens * price.output_per_1m) / 1e6


def price_sheet(value: Any) -> Any:
    """The grid's `prices`: None (the study's 8 USD/hour), a price sheet YAML file, or the sheet inline (same
    shape, validated the same way)."""
    import tempfile

    import yaml

    from selbench.cost.prices import load_price_sheet

    if value is None or isinstance(value, str):
        return load_price_sheet(value)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(value, fh)
    try:
        return load_price_sheet(fh.name)
    finally:
        Path(fh.name).unlink(missing_ok=True)


def estimate(plan: Plan, status: dict[str, NodeStatus], store: StepStore, unregistered: list[str] = (),
             device: str | None = None) -> Estimate:
    """Seconds and dollars of every node not cached, on this machine (or `device`)."""
    tp = measure_throughputs(store, plan.grid.model, device)
    prices = price_sheet(plan.grid.prices)
    rate = prices.node_rate(tp.device) / 3600.0
    work = _Work(plan, tp)
    seconds: dict[str, float] = {}
    usd: dict[str, float] = {}
    for node in plan.nodes.values():
        if status.get(node.id) is not None and status[node.id].cached:
            continue
        try:
            s, api = work.node(node)
        except Exception as exc:  # noqa: BLE001 - an estimate must never stop a dry run
            log.debug("no estimate for %s: %s", node.id, exc)
            s, api = 0.0, 0.0
        seconds[node.id] = s
        usd[node.id] = s * rate + api
    result = Estimate(seconds, usd, tp)
    for strategy in unregistered:
        extra = UNREGISTERED_SCORING.get(strategy)
        if extra is None:
            continue
        for dataset in plan.grid.datasets:
            n, mean = work.dataset_facts(dataset)
            s, api = 0.0, 0.0
            if "forward_passes" in extra:
                speed = tp.train_tokens_per_s * FORWARD_SPEEDUP * (20.0 if extra.get("small_model") else 1.0)
                s += extra["forward_passes"] * n * mean / speed
            if "train_examples" in extra:
                s += extra["train_examples"] * mean / tp.train_tokens_per_s
            if "api" in extra:
                model, tin, tout = extra["api"]
                price = prices.api_price(model)
                api += n * (tin * price.input_per_1m + tout * price.output_per_1m) / 1e6
                s += n * 0.02
            result.extra_seconds += s
            result.extra_usd += s * rate + api
    return result

"""The embedded default study: a miniature of "Chasing Random" that runs offline on a laptop CPU.

One dataset (the packaged ShareGPT pool), one strategy (Longest, the study's cheapest and strongest)
against its random baselines (three overlap-constrained seeds and a strict-random draw), LoRA on the
packaged SmolLM2-135M-Instruct, IFEval on a few prompts, the cost of every step, and a report. Every step
goes through the step store, so a second `selbench demo` is nearly free and an interrupted one resumes.

At this scale the numbers answer nothing about real models; the demo shows the pipeline and its
accounting end to end. Real studies change the budget, the model and the benchmark limits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DemoConfig:
    """Args:
    out: run folder (data, selections, models, evaluations, report).
    budget: examples per selection.
    seeds: seeds of the overlap-constrained random baselines.
    max_overlap: the study's bound on a random baseline's overlap with the strategy (0.3).
    model: base model spec for fine-tuning and evaluation.
    train: fine-tune (LoRA, `demo` preset) on Longest and on the first random seed.
    max_length: training sequence length (tokens).
    ifeval_limit: IFEval prompts per model (0 skips evaluation).
    max_new_tokens: generation length for IFEval.
    """

    out: Path = Path("runs/demo")
    budget: int = 32
    seeds: tuple[int, ...] = (0, 1, 2)
    max_overlap: float = 0.3
    model: str = "smollm2-135m-instruct"
    train: bool = True
    max_length: int = 256
    ifeval_limit: int = 8
    max_new_tokens: int = 128

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if not self.seeds:
            raise ValueError("seeds must name at least one random seed")
        if self.ifeval_limit < 0:
            raise ValueError(f"ifeval_limit must be >= 0, got {self.ifeval_limit}")


def _step(name: str) -> None:
    log.info("demo: %s", name)


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """Run the embedded default study and write its report; returns the report's data."""
    from selbench.analysis.overlap import overlap_matrix
    from selbench.cost.tables import collect_costs, selection_cost_rows, selection_vs_full_rows
    from selbench.data.prepare import prepare
    from selbench.selection.manifest import run_selection

    started = time.perf_counter()
    out = Path(config.out)
    data_dir = out / "data" / "sharegpt"
    sel_dir = out / "selections"

    _step("prepare the packaged ShareGPT pool")
    data = prepare("sharegpt", "sharegpt", data_dir)

    _step(f"select longest and its random baselines at budget {config.budget}")
    selections: dict[str, dict[str, Any]] = {}
    longest_path = sel_dir / f"longest-{config.budget}.json"
    selections["longest"] = run_selection(data_dir, "longest", config.budget, longest_path).manifest
    for seed in config.seeds:
        path = sel_dir / f"random-{config.budget}-s{seed}.json"
        selections[f"random-s{seed}"] = run_selection(
            data_dir, "random", config.budget, path, seed=seed, against=[longest_path],
            params={"max_overlap": config.max_overlap},
        ).manifest
    strict_path = sel_dir / f"strict-random-{config.budget}-s0.json"
    selections["strict-random-s0"] = run_selection(
        data_dir, "strict-random", config.budget, strict_path, seed=0, against=[longest_path],
        params={"reference_budget": config.budget},
    ).manifest
    overlap, jaccard = overlap_matrix({name: m["ids"] for name, m in selections.items()})

    training: dict[str, dict[str, Any]] = {}
    evaluations: dict[str, dict[str, Any]] = {}
    models = {"base": config.model}
    if config.train:
        from selbench.training.presets import from_preset
        from selbench.training.train import train

        train_config = from_preset("demo", lora=True, max_length=config.max_length)
        first_random = f"random-s{config.seeds[0]}"
        for name, path in (("longest", longest_path), (first_random, sel_dir / f"random-{config.budget}-s{config.seeds[0]}.json")):
            _step(f"fine-tune {config.model} (LoRA) on {name}")
            result = train(config.model, data_dir, path, train_config, out / "train" / name)
            training[name] = {k: result.get(k) for k in ("train_tokens", "tokens_per_s", "seconds", "cost_usd", "first_loss", "final_loss", "cached")}
            models[name] = str(out / "train" / name)

    if config.ifeval_limit:
        from selbench.evaluation.ifeval import evaluate as ifeval
        from selbench.generation.base import GenerationConfig

        generation = GenerationConfig(max_new_tokens=config.max_new_tokens)
        for name, spec in models.items():
            _step(f"IFEval ({config.ifeval_limit} prompts) on {name}")
            result = ifeval(model=spec, limit=config.ifeval_limit, generation=generation, out=out / "eval" / "ifeval" / name)
            evaluations[name] = {k: result[k] for k in ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose", "n")}

    _step("cost tables")
    sel_costs, train_costs = collect_costs(out)
    report = {
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()},
        "dataset": {"path": str(data_dir), "n": data["n"], "n_dropped": data["n_dropped"], "sha256": data["sha256"]},
        "selections": {
            name: {
                "strategy": m["strategy"], "seed": m["seed"], "n_selected": len(m["ids"]), "ids_sha256": m["ids_sha256"],
                "overlap_with_against": m.get("overlap") or {}, "cost_usd": m["cost"]["usd"],
            }
            for name, m in selections.items()
        },
        "overlap": overlap,
        "jaccard": jaccard,
        "training": training,
        "ifeval": evaluations,
        "cost": {
            "selection_per_1k": selection_cost_rows(sel_costs),
            "selection_vs_full": selection_vs_full_rows(sel_costs, train_costs),
        },
        "seconds": time.perf_counter() - started,
    }
    from selbench.report.summary import write_report

    paths = write_report(report, out / "report")
    report["report"] = str(paths["html"])
    report["markdown"] = str(paths["markdown"])
    return report

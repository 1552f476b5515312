"""`selbench demo`: the packaged demo grid (`configs/demo.yaml`) run with `selbench run`, then the report.

    result = run_demo("small")      # runs/demo: the grid as shipped, offline, on a laptop CPU
    result = run_demo("medium")     # runs/demo-medium: the same grid, scaled for a GPU or a many-core box

The grid is a miniature of "Chasing Random" on the packaged ShareGPT pool and SmolLM2-135M-Instruct (see the
file for its strategies and benchmarks). `--size` scales the same grid, nothing else: the subsample of each
pool, the budgets, the training length, and the items and generation length of each benchmark. Every step
goes through the step store, so a second demo is nearly free and an interrupted one resumes; the scaled grid
that ran is kept in the run folder (`demo.yaml`; `grid.yaml` is it as resolved).

Sizes, from the throughputs measured on SmolLM2-135M (`../shared/env/README.md`: LoRA ~105 training
tokens/s and batched generation ~60-95 tokens/s on 2 CPU cores; a GPU is one to two orders faster):

* small: the grid as shipped: 128 examples, budget 16, 4 items per benchmark (AlpaGasus rating a seeded
  64): about a minute of training per cell on 2 CPU cores; the whole demo (11 cells) measured at 25 minutes
  from a fresh clone.
* medium: 4,096 examples (AlpaGasus rating them all), budgets 128 and 256, 100 items per benchmark at 256
  new tokens, training length 512: roughly 50x small's training tokens and 30x its generated tokens: hours on 2 cores, tens of
  minutes on one GPU.
* large: the whole pool (16,578), budgets 1,000, 2,000 and 4,000 (the study's scale), all 541 IFEval
  prompts, all LLMBar instances, the study's 300 AlpacaEval instructions, training length 1,024: a GPU job.

At every size the base model is SmolLM2-135M and its judge too: the report says the numbers show the
machinery, not a finding.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from selbench.errors import InputError
from selbench.store import write_text_atomic

DEMO_GRID = Path(__file__).with_name("demo.yaml")  # configs/demo.yaml, shipped inside the package


@dataclass(frozen=True)
class DemoSize:
    """How far `--size` scales the demo grid.

    Args:
        pool: examples subsampled from each dataset (None: the whole pool); None for `small` keeps the grid's.
        budgets: the budgets (None keeps the grid's).
        max_length: training sequence length (None keeps the grid's).
        items: items per benchmark (`ifeval`, `llmbar`, `alpacaeval`; None in the mapping: all of them).
        max_new_tokens: generation length of `ifeval` and `alpacaeval` (None keeps the grid's).
        out: default run folder.
    """

    pool: int | None
    budgets: tuple[int, ...] | None
    max_length: int | None
    items: dict[str, int | None]
    max_new_tokens: dict[str, int]
    out: str


SIZES: dict[str, DemoSize] = {
    "small": DemoSize(None, None, None, {}, {}, "runs/demo"),
    "medium": DemoSize(4096, (128, 256), 512, {"ifeval": 100, "llmbar": 100, "alpacaeval": 100},
                       {"ifeval": 256, "alpacaeval": 256}, "runs/demo-medium"),
    "large": DemoSize(None, (1000, 2000, 4000), 1024, {"ifeval": None, "llmbar": None, "alpacaeval": 300},
                      {"ifeval": 1024, "alpacaeval": 512}, "runs/demo-large"),
}


def demo_grid(size: str = "small", grid: str | Path | None = None) -> dict[str, Any]:
    """The demo grid (or `grid`) as a mapping, scaled to `size`; validated when it runs.

    >>> g = demo_grid("medium")
    >>> g["budgets"], g["datasets"]["sharegpt"]["limit"], g["benchmarks"]["ifeval"]["limit"], g["out"]
    ([128, 256], 4096, 100, 'runs/demo-medium')
    >>> demo_grid("large")["datasets"]["sharegpt"]["limit"] is None
    True
    """
    if size not in SIZES:
        raise InputError(f"{size!r} is not one of {', '.join(SIZES)}", field="size")
    path = Path(grid) if grid is not None else DEMO_GRID
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("grid file not found", path=path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not YAML: {exc}", path=path) from None
    if not isinstance(raw, dict):
        raise InputError("a grid is a mapping of keys (out, model, datasets, ...)", path=path)
    scaled = copy.deepcopy(raw)
    spec = SIZES[size]
    if size != "small":
        for dataset in (scaled.get("datasets") or {}).values():
            if isinstance(dataset, dict):
                dataset["limit"] = spec.pool
        scaled["out"] = spec.out
    if spec.budgets is not None:
        scaled["budgets"] = list(spec.budgets)
    if size != "small":  # the small demo rates a seeded part of its pool; bigger ones, the preset's (study: 40,000)
        for params in (scaled.get("strategies") or {}).values():
            if isinstance(params, dict):
                params.pop("pool_size", None)
    if spec.max_length is not None:
        train = scaled.setdefault("train", {})
        train["set"] = {**(train.get("set") or {}), "max_length": spec.max_length}
    for name, bench in (scaled.get("benchmarks") or {}).items():
        if not isinstance(bench, dict):
            continue  # not run: scaling adds no benchmark
        if name in spec.items:
            bench["limit"] = spec.items[name]
        if name in spec.max_new_tokens:
            bench["max_new_tokens"] = spec.max_new_tokens[name]
    return scaled


def run_demo(size: str = "small", *, out: str | Path | None = None, grid: str | Path | None = None,
             progress: bool | None = None, workers: int | None = None) -> dict[str, Any]:
    """Run the demo grid scaled to `size` (`selbench run`), then write its report (`selbench report`).

    Args:
        size: small, medium or large (see the module docstring).
        out: the run folder (default: the size's, `runs/demo[-SIZE]`).
        grid: another grid to run the same way (tests use a tiny one).
        progress: show the progress display (default: when stderr is a terminal).
        workers: most steps at once.

    Returns:
        `report` (the HTML page), `markdown`, `json`, `seconds`, `run` (`selbench run`'s summary), `verdicts`
        (counts), `text` (caveats, headline and verdict table for a terminal).
    """
    from selbench.report.html import to_text
    from selbench.report.study import write_study_report
    from selbench.runner.study import run_study

    started = time.perf_counter()
    scaled = demo_grid(size, grid)
    run_dir = Path(out if out is not None else scaled.get("out") or SIZES[size].out)
    scaled["out"] = str(run_dir)
    grid_file = run_dir / "demo.yaml"
    header = f"# selbench demo --size {size}: {'the grid' if grid else 'configs/demo.yaml'} scaled to {size}\n"
    write_text_atomic(grid_file, header + yaml.safe_dump(scaled, sort_keys=False))
    ran = run_study(grid_file, progress=progress, workers=workers)
    written = write_study_report(ran.plan.run_dir)
    return {"report": written["html"], "markdown": written["markdown"], "json": written["json"],
            "seconds": time.perf_counter() - started, "run": ran.summary(),
            "verdicts": written["summary"]["verdicts"], "text": to_text(written["report"])}

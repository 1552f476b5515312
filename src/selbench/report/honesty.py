"""Honest by construction: when a run is too small to answer anything, the report says so before any number.

The study's answer rests on benchmarks of hundreds of items, 7B models and judges such as GPT-4, budgets of
1,000 examples and more, and three random seeds. A run far below that (the offline demo: a 135M model judging
and being judged on a few dozen items) still exercises every step, so its numbers show the machinery working,
not a finding about the strategies. `caveats` lists each reason found in the run folder; the report shows
them in a banner at the top of the page.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from selbench.analysis.tables import BENCHMARK, ITEM, RANDOM, SEED, STRATEGY

MIN_ITEMS = 100
MIN_SEEDS = 3
MIN_BUDGET = 1000
SMALL_MODEL_PARAMS = 1e9
_PARAMS = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([mb])(?![a-z])", re.IGNORECASE)
BANNER = "These numbers show the machinery, not a finding."


def model_params(spec: Any) -> float | None:
    """Parameter count read from a model's name ("smollm2-135m-instruct" -> 135e6), None when it says none.

    >>> model_params("smollm2-135m-instruct"), model_params("hf://meta-llama/Llama-2-7b-hf"), model_params("gpt-4")
    (135000000.0, 7000000000.0, None)
    """
    if not spec:
        return None
    found = _PARAMS.findall(str(spec).rsplit("/", 1)[-1]) or _PARAMS.findall(str(spec))
    if not found:
        return None
    number, unit = found[-1]
    return float(number) * (1e6 if unit.lower() == "m" else 1e9)


def _small(spec: Any) -> bool:
    params = model_params(spec)
    return (params is not None and params < SMALL_MODEL_PARAMS) or "tiny" in str(spec).lower()


def _judge(grid: dict[str, Any]) -> str | None:
    bench = (grid.get("benchmarks") or {}).get("alpacaeval") or {}
    judge = bench.get("judge") if isinstance(bench, dict) else None
    return str(judge.get("model")) if isinstance(judge, dict) and judge.get("model") else None


def caveats(results: pd.DataFrame, items: pd.DataFrame, grid: dict[str, Any],
            planned_cells: list[str] | None = None) -> list[str]:
    """Why this run's numbers cannot be read as a finding (empty when none of the checks fires).

    >>> items = pd.DataFrame({"benchmark": ["ifeval"] * 8, "item": [str(i) for i in range(8)],
    ...                       "strategy": "random", "seed": 0})
    >>> for line in caveats(items.assign(budget=32), items, {"model": "smollm2-135m-instruct"}):
    ...     print(line)
    Benchmarks are tiny: ifeval has 8 items (at least 100 are needed to see differences of a few points).
    The base model is small (smollm2-135m-instruct, about 135M parameters); the study fine-tuned 7B models.
    Only 1 random seed per setup (the study used 3): the seed-to-seed spread is barely estimated.
    Budgets are tiny (at most 32 examples; the study selected 1,000 to 10,000).
    """
    out = []
    if len(items):
        sizes = items.groupby(BENCHMARK)[ITEM].nunique()
        small = {str(b): int(n) for b, n in sizes.items() if n < MIN_ITEMS}
        if small:
            listed = ", ".join(f"{b} has {n:,} item{'s' if n != 1 else ''}" for b, n in sorted(small.items()))
            out.append(f"Benchmarks are tiny: {listed} (at least {MIN_ITEMS} are needed to see differences of a "
                       "few points).")
    elif len(results):
        out.append("No per-item scores (items.parquet): nothing can be tested against random.")
    model = grid.get("model")
    if model and _small(model):
        size = model_params(model)
        about = f", about {size / 1e6:,.0f}M parameters" if size else ""
        out.append(f"The base model is small ({model}{about}); the study fine-tuned 7B models.")
        if "llmbar" in set(map(str, results.get(BENCHMARK, []))):
            out.append("LLMBar asks each fine-tuned model itself to judge pairs of answers: a model this small "
                       "judges near chance.")
    judge = _judge(grid)
    if judge and _small(judge):
        out.append(f"The head-to-head judge is a small model ({judge}); the study's judge was GPT-4 Turbo.")
    if len(results) and STRATEGY in results:
        rnd = results[results[STRATEGY] == RANDOM]
        seeds = rnd[SEED].nunique() if len(rnd) else 0
        if seeds < MIN_SEEDS:
            out.append(f"Only {seeds} random seed{'s' if seeds != 1 else ''} per setup (the study used "
                       f"{MIN_SEEDS}): the seed-to-seed spread is barely estimated.")
        budgets = results.loc[results[STRATEGY] != "full", "budget"].dropna()
        if len(budgets) and budgets.max() < MIN_BUDGET:
            out.append(f"Budgets are tiny (at most {int(budgets.max()):,} examples; the study selected 1,000 to "
                       "10,000).")
    if planned_cells is not None and "cell" in results:
        done = set(map(str, results["cell"].dropna()))
        lost = [c for c in planned_cells if c not in done]
        if lost:
            out.append(f"{len(lost)} of {len(planned_cells)} planned cells have no results (failed or not run "
                       f"yet), e.g. {lost[0]}: see run.log.")
    return out

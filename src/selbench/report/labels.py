"""Shared helpers of the report's sections: which metric stands for a benchmark, and how cells are named.

A benchmark reports several metrics (IFEval: four pass rates; LLMBar: accuracy and positional agreement; the
head-to-head: win rate and its mean-adjusted form). The figures plot one per benchmark, the one the
per-item scores of `items.parquet` measure (so a figure and the verdict speak of the same number); the
tables and the JSON keep every metric.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from selbench.analysis.tables import BENCHMARK, HEAD_TO_HEAD, LORA, METRIC, PRESET
from selbench.report.format import missing

#: The metric of each benchmark that its per-item scores measure (selbench.runner.interim_evals).
PRIMARY = {"ifeval": "prompt_strict", "llmbar": "accuracy", HEAD_TO_HEAD: "mean_adjusted_win_rate"}
_FALLBACK = {HEAD_TO_HEAD: "win_rate"}


def primary_metrics(results: pd.DataFrame) -> dict[str, str]:
    """benchmark -> the metric its figures plot: `PRIMARY`'s when present, else the first by name.

    >>> t = pd.DataFrame({"benchmark": ["ifeval", "ifeval", "x"], "metric": ["inst_loose", "prompt_strict", "b"]})
    >>> primary_metrics(t)
    {'ifeval': 'prompt_strict', 'x': 'b'}
    """
    out = {}
    for bench, part in results.groupby(BENCHMARK, sort=True):
        metrics = sorted(map(str, part[METRIC].unique()))
        for choice in (PRIMARY.get(str(bench)), _FALLBACK.get(str(bench))):
            if choice in metrics:
                out[str(bench)] = choice
                break
        else:
            out[str(bench)] = metrics[0]
    return out


def only_primary(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of each benchmark's primary metric."""
    primary = primary_metrics(results)
    keep = [primary.get(str(b)) == str(m) for b, m in zip(results[BENCHMARK], results[METRIC], strict=True)]
    return results[keep].reset_index(drop=True)


def setup_label(preset: Any, lora: Any) -> str:
    """A training setup in words.

    >>> setup_label("demo", True), setup_label("set1", False)
    ('demo, LoRA', 'set1, full fine-tuning')
    """
    return f"{preset}, {'LoRA' if bool(lora) else 'full fine-tuning'}"


def several_setups(results: pd.DataFrame) -> bool:
    """Whether the run has more than one (preset, lora): only then do tables name the setup."""
    return len(results[[PRESET, LORA]].drop_duplicates()) > 1


def selection_label(strategy: Any, seed: Any) -> str:
    """A selection's short name: the strategy, with the seed for seeded baselines.

    >>> selection_label("longest", float("nan")), selection_label("strict-random", 0.0)
    ('longest', 'strict-random s0')
    """
    return str(strategy) if missing(seed) else f"{strategy} s{int(seed)}"


def budget_label(budget: Any) -> str:
    """A budget in words.

    >>> budget_label(1000)
    'budget 1,000'
    """
    return "budget ?" if missing(budget) else f"budget {int(budget):,}"


def benchmark_label(benchmark: str, metric: str) -> str:
    """A benchmark and the metric shown for it.

    >>> benchmark_label("ifeval", "prompt_strict")
    'ifeval · prompt_strict'
    """
    return f"{benchmark} · {metric}"


def panel_title(budget: Any, preset: Any, lora: Any, show_setup: bool) -> str:
    """A figure panel's title: the budget, and the setup when the run has several.

    >>> panel_title(32, "demo", True, False), panel_title(32, "demo", True, True)
    ('budget 32', 'budget 32 · demo, LoRA')
    """
    return budget_label(budget) + (f" · {setup_label(preset, lora)}" if show_setup else "")

"""Do benchmarks agree, and does LoRA tell the same story as full fine-tuning? (Chasing Random, Figs. 4, 7, 11)

Diddee & Ippolito ask whether a strategy that does well on one benchmark does well on another (Figures 4
and 11: rank correlations between benchmarks) and whether LoRA fine-tuning ranks selections as full
fine-tuning does (Figure 7). Here every fine-tuned model (cell) is one point; Spearman's rho and Kendall's
tau-b come with percentile bootstrap intervals over points (`selbench.analysis.stats.rank_correlation`).
Deviation: the paper's exact pooling of points is not in its code; `against_random=True` correlates each
strategy's gain over its setup's random mean instead of raw scores, which removes the shift that datasets
and budgets put on every benchmark at once (a shared shift inflates raw correlations).
"""

from __future__ import annotations

import pandas as pd

from selbench.analysis.stats import rank_correlation
from selbench.analysis.tables import (
    BENCHMARK,
    BUDGET,
    CELL_COLUMNS,
    DATASET,
    LORA,
    METRIC,
    PRESET,
    SEED,
    STRATEGY,
    VALUE,
    check_results,
)
from selbench.analysis.views import vs_random

_CORR_COLUMNS = ["n", "spearman", "spearman_low", "spearman_high", "kendall", "kendall_low", "kendall_high"]


def benchmark_correlations(
    results: pd.DataFrame,
    *,
    against_random: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Rank correlation between every two benchmark metrics over the models that have both.

    Args:
        results: a results table.
        against_random: correlate gains over the setup's random mean (`vs_random`'s `delta_mean`, one point
            per strategy and setup) instead of raw scores (one point per cell, random seeds included).
        n_boot / seed / level: the bootstrap's resamples, seed and interval level.

    Returns:
        One row per unordered pair of (benchmark, metric) with different benchmarks: `benchmark_a`,
        `metric_a`, `benchmark_b`, `metric_b`, `n`, `spearman`, `spearman_low`, `spearman_high`,
        `kendall`, `kendall_low`, `kendall_high`.

    >>> rows = [dict(dataset="d", budget=8, strategy="s", seed=k, preset="p", lora=True, benchmark=b,
    ...              metric="m", value=v) for k, a, c in [(0, 1, 10), (1, 2, 30), (2, 3, 20), (3, 4, 40)]
    ...         for b, v in (("x", a), ("y", c))]
    >>> benchmark_correlations(pd.DataFrame(rows), n_boot=0)[["benchmark_a", "benchmark_b", "n", "spearman", "kendall"]].round(3).to_dict("records")
    [{'benchmark_a': 'x', 'benchmark_b': 'y', 'n': 4, 'spearman': 0.8, 'kendall': 0.667}]
    """
    check_results(results)
    if against_random:
        points = vs_random(results).rename(columns={"delta_mean": "_point"})
        keys = [DATASET, BUDGET, PRESET, LORA, STRATEGY]
    else:
        points = results.rename(columns={VALUE: "_point"})
        keys = list(CELL_COLUMNS)
    points = points.assign(_cell=points.groupby(keys, dropna=False).ngroup())
    wide = points.pivot_table(index="_cell", columns=[BENCHMARK, METRIC], values="_point", aggfunc="first")
    columns = sorted(wide.columns, key=lambda c: (str(c[0]), str(c[1])))
    rows = []
    for i, (bench_a, metric_a) in enumerate(columns):
        for bench_b, metric_b in columns[i + 1 :]:
            if bench_a == bench_b:
                continue
            corr = rank_correlation(
                wide[(bench_a, metric_a)].to_numpy(float), wide[(bench_b, metric_b)].to_numpy(float),
                n_boot=n_boot, seed=seed, level=level,
            )
            rows.append({"benchmark_a": bench_a, "metric_a": metric_a, "benchmark_b": bench_b, "metric_b": metric_b, **corr})
    return pd.DataFrame(rows, columns=["benchmark_a", "metric_a", "benchmark_b", "metric_b", *_CORR_COLUMNS])


def lora_vs_full_pairs(
    results: pd.DataFrame,
    *,
    full_preset: str | None = None,
    lora_preset: str | None = None,
) -> pd.DataFrame:
    """The same selection fine-tuned fully and with LoRA, side by side (the study's Figure 7 scatter).

    Cells are paired by (dataset, budget, strategy, seed, benchmark, metric); the full fine-tuning side is
    `lora == False`, the other `lora == True`. The two sides may use different presets (the study's LoRA
    preset is its own); when a side has several presets, name the one to use.

    Args:
        results: a results table.
        full_preset / lora_preset: keep only this preset on that side.

    Returns:
        The pairing keys + `value_full`, `value_lora`, `preset_full`, `preset_lora`.

    >>> rows = [dict(dataset="d", budget=8, strategy="s", seed=0, preset=p, lora=l, benchmark="x", metric="m", value=v)
    ...         for p, l, v in (("set1", False, 0.5), ("set4-lora", True, 0.4))]
    >>> lora_vs_full_pairs(pd.DataFrame(rows))[["strategy", "value_full", "value_lora", "preset_lora"]].to_dict("records")
    [{'strategy': 's', 'value_full': 0.5, 'value_lora': 0.4, 'preset_lora': 'set4-lora'}]
    """
    check_results(results)
    keys = [DATASET, BUDGET, STRATEGY, SEED, BENCHMARK, METRIC]
    sides = {}
    for name, is_lora, preset in (("full", False, full_preset), ("lora", True, lora_preset)):
        side = results[results[LORA].astype(bool) == is_lora]
        if preset is not None:
            side = side[side[PRESET] == preset]
        presets = sorted(map(str, side[PRESET].dropna().unique()))
        if len(presets) > 1:
            raise ValueError(f"the {name} fine-tuning cells use several presets ({', '.join(presets)}): pass {name}_preset")
        sides[name] = side[[*keys, PRESET, VALUE]].rename(columns={PRESET: f"preset_{name}", VALUE: f"value_{name}"})
    pairs = sides["full"].merge(sides["lora"], on=keys, how="inner")
    return pairs.sort_values(keys, kind="stable").reset_index(drop=True)[
        [*keys, "value_full", "value_lora", "preset_full", "preset_lora"]
    ]


def lora_vs_full_correlation(
    results: pd.DataFrame,
    *,
    full_preset: str | None = None,
    lora_preset: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Per benchmark and metric, the rank correlation of LoRA and full fine-tuning scores over paired cells.

    Returns:
        `benchmark`, `metric`, `n`, `spearman`, `spearman_low`, `spearman_high`, `kendall`, `kendall_low`,
        `kendall_high`; see `lora_vs_full_pairs` for the pairing and the preset arguments.

    >>> rows = [dict(dataset="d", budget=8, strategy="s", seed=k, preset="p", lora=l, benchmark="x", metric="m", value=v)
    ...         for k, f, r in [(0, 1, 2), (1, 2, 1), (2, 3, 3)] for l, v in ((False, f), (True, r))]
    >>> lora_vs_full_correlation(pd.DataFrame(rows), n_boot=0)[["benchmark", "n", "spearman"]].to_dict("records")
    [{'benchmark': 'x', 'n': 3, 'spearman': 0.5}]
    """
    pairs = lora_vs_full_pairs(results, full_preset=full_preset, lora_preset=lora_preset)
    rows = []
    for (bench, metric), part in pairs.groupby([BENCHMARK, METRIC], sort=True):
        corr = rank_correlation(part["value_full"].to_numpy(float), part["value_lora"].to_numpy(float),
                                n_boot=n_boot, seed=seed, level=level)
        rows.append({BENCHMARK: bench, METRIC: metric, **corr})
    return pd.DataFrame(rows, columns=[BENCHMARK, METRIC, *_CORR_COLUMNS])

"""The figures that set each strategy against random: Chasing Random's Figures 6 and 2, budget trends, regret.

Views from `selbench.analysis.views` and `selbench.analysis.regret`, plotted with `selbench.report.figures`
and tabulated with the same numbers. Each function returns one `Section`; a section whose data the run does
not have says so in one sentence.
"""

from __future__ import annotations

import pandas as pd

from selbench.analysis.regret import budget_transfer_regret
from selbench.analysis.tables import HEAD_TO_HEAD, MEAN_ADJUSTED_WIN_RATE, METRIC, VALUE
from selbench.analysis.views import budget_trends, mean_adjusted_win_rates, vs_random
from selbench.report import figures
from selbench.report import format as fmt
from selbench.report.document import Figure, Section, Table
from selbench.report.labels import (
    benchmark_label,
    only_primary,
    panel_title,
    selection_label,
    setup_label,
    several_setups,
)

_SETUP = ["preset", "lora"]


def _base_value(base: pd.DataFrame, benchmark: str, metric: str) -> float | None:
    rows = base[(base["benchmark"] == benchmark) & (base[METRIC] == metric)] if len(base) else base
    return float(rows[VALUE].iloc[0]) if len(rows) else None


def vs_random_section(results: pd.DataFrame, base: pd.DataFrame) -> Section:
    """Figure 6: each strategy against the random seeds' mean ± sd and their worst seed, per benchmark."""
    section = Section("vs-random", "Strategies against random: mean ± sd and the worst random seed (Fig. 6)")
    section.text = ["Dots: each strategy's model. Grey band: the random seeds' mean ± one standard deviation; "
                    "red dashed line: the worst random seed (the study's pessimistic baseline); dotted: the base "
                    "model before fine-tuning. A dot inside the band is what random selection gives anyway."]
    view = vs_random(only_primary(results)) if len(results) else pd.DataFrame()
    view = view[view["n_random"] > 0] if len(view) else view
    if view.empty:
        section.absent = "No benchmark was scored on both a strategy's model and the random models."
        return section
    show_setup = several_setups(results)
    for (dataset, bench, metric), part in view.groupby(["dataset", "benchmark", METRIC], sort=True):
        panels = [(panel_title(b, p, lo, show_setup), rows)
                  for (b, p, lo), rows in part.groupby(["budget", *_SETUP], sort=True)]
        label = f"{dataset}: {benchmark_label(bench, metric)} against random"
        svg = figures.vs_random(panels, metric, _base_value(base, bench, metric), label)
        section.blocks.append(Figure(label, svg, table=_vs_random_table(part, metric, show_setup, label)))
    return section


def _vs_random_table(part: pd.DataFrame, metric: str, show_setup: bool, title: str) -> Table:
    header = ["Budget", *(["Setup"] if show_setup else []), "Strategy", "Score", "Random mean ± sd",
              "Worst random", "Δ mean", "Δ worst", "Full data"]
    rows = []
    for _, r in part.iterrows():
        rows.append([f"{int(r['budget']):,}", *([setup_label(r['preset'], r['lora'])] if show_setup else []),
                     str(r["strategy"]) + (f" (×{int(r['n_seeds'])})" if r["n_seeds"] > 1 else ""),
                     fmt.score(r["value"], metric),
                     f"{fmt.score(r['random_mean'], metric)} ± {fmt.score_delta(r['random_sd'], metric).lstrip('+')}"
                     f" (n={int(r['n_random'])})", fmt.score(r["random_min"], metric),
                     fmt.score_delta(r["delta_mean"], metric), fmt.score_delta(r["delta_min"], metric),
                     fmt.score(r["full_value"], metric)])
    return Table(title, header, rows, part.to_dict("records"))


def head_to_head_section(results: pd.DataFrame) -> Section:
    """Figure 2: mean-adjusted win rates of each strategy's model against the random models."""
    section = Section("head-to-head", "Head-to-head against random: mean-adjusted win rate (Fig. 2)")
    section.text = ["The judge compares each strategy model's answer with a random model's answer to the same "
                    "instruction. Mean-adjusted win rate = win rate − 50: above 0 the strategy's answers are "
                    "preferred to random's."]
    wins = mean_adjusted_win_rates(results) if len(results) else pd.DataFrame()
    if wins.empty:
        section.absent = f"No head-to-head ({HEAD_TO_HEAD}) results in this run."
        return section
    show_setup = several_setups(results)
    palette = figures.colors(wins["strategy"])
    for dataset, part in wins.groupby("dataset", sort=True):
        panels, keys = [], []
        for (b, p, lo), rows in part.groupby(["budget", *_SETUP], sort=True):
            names = [selection_label(s, k) for s, k in zip(rows["strategy"], rows["seed"], strict=True)]
            panels.append((panel_title(b, p, lo, show_setup), names, rows[MEAN_ADJUSTED_WIN_RATE].tolist()))
            keys.append([str(s) for s in rows["strategy"]])
        label = f"{dataset}: mean-adjusted win rate against the random models"
        svg = figures.bars(panels, "win rate − 50 (points)", label, palette, keys)
        table = Table(label, ["Budget", *(["Setup"] if show_setup else []), "Strategy", "Win rate", "Mean-adjusted"],
                      [[f"{int(r['budget']):,}", *([setup_label(r['preset'], r['lora'])] if show_setup else []),
                        selection_label(r["strategy"], r["seed"]), fmt.percent(r["win_rate"], fraction=False),
                        fmt.points(r[MEAN_ADJUSTED_WIN_RATE], fraction=False)] for _, r in part.iterrows()],
                      part.to_dict("records"))
        section.blocks.append(Figure(label, svg, table=table))
    return section


def budget_trends_section(results: pd.DataFrame) -> Section:
    """Each strategy's score across budgets, beside random's mean ± sd and the full-data model."""
    section = Section("budget-trends", "Budget trends")
    section.text = ["Does a strategy's advantage grow or shrink with the budget? Lines: each strategy's score "
                    "(mean over its seeds); grey band: random's mean ± sd; dashed: the model trained on all data."]
    budgets = sorted(results["budget"].unique()) if len(results) else []
    trends = budget_trends(only_primary(results)) if len(results) else pd.DataFrame()
    if len(trends):
        trends = trends[trends.groupby(["dataset", *_SETUP, "benchmark", METRIC])["budget"].transform("nunique") > 1]
    if trends.empty:
        shown = ", ".join(f"{int(b):,}" for b in budgets)
        section.absent = f"One budget per dataset in this run ({shown}): no trend to show." if shown else \
            "No fine-tuned cells yet."
        return section
    show_setup = several_setups(results)
    for (dataset, p, lo, bench, metric), part in trends.groupby(["dataset", *_SETUP, "benchmark", METRIC], sort=True):
        label = f"{dataset}: {benchmark_label(bench, metric)} by budget" + (
            f" ({setup_label(p, lo)})" if show_setup else "")
        svg = figures.budget_trends(part, metric, label)
        wide = part.pivot_table(index="strategy", columns="budget", values="value", aggfunc="first")
        table = Table(label, ["Strategy", *(f"{int(b):,}" for b in wide.columns)],
                      [[str(s), *(fmt.score(v, metric) for v in row)] for s, row in wide.iterrows()],
                      part.to_dict("records"))
        section.blocks.append(Figure(label, svg, table=table))
    return section


def regret_section(results: pd.DataFrame) -> Section:
    """Budget-transfer regret: choose the best strategy at the smallest budget, pay at the larger ones."""
    section = Section("regret", "Budget-transfer regret")
    section.text = ["Practitioners pilot at a small budget and scale the winner up. Here the strategy best at "
                    "the smallest budget (random included) is followed to each larger budget: its rank there, "
                    "and the points lost against the strategy that is best there (0 when the choice transfers)."]
    regret = budget_transfer_regret(only_primary(results)) if len(results) else pd.DataFrame()
    if regret.empty:
        section.absent = "One budget per dataset in this run: nothing to transfer."
        return section
    show_setup = several_setups(results)
    header = ["Dataset", *(["Setup"] if show_setup else []), "Benchmark", "Chosen at", "Chosen", "At budget",
              "Rank there", "Its score", "Best there", "Regret"]
    rows = []
    for _, r in regret.iterrows():
        rank = fmt.DASH if fmt.missing(r["rank"]) else f"{int(r['rank'])} of {int(r['n_strategies'])}"
        rows.append([str(r["dataset"]), *([setup_label(r['preset'], r['lora'])] if show_setup else []),
                     benchmark_label(r["benchmark"], r[METRIC]), f"{int(r['from_budget']):,}", str(r["chosen"]),
                     f"{int(r['budget']):,}", rank, fmt.score(r["score"], r[METRIC]),
                     f"{r['best_strategy']} ({fmt.score(r['best_score'], r[METRIC])})",
                     fmt.score_delta(r["regret"], r[METRIC]).lstrip("+")])
    table = Table("Budget-transfer regret", header, rows, regret.to_dict("records"))
    if not (regret["regret"].fillna(0) > 0).any():
        section.text.append("Every choice made at the smallest budget stayed the best at the larger ones "
                            "(regret 0 everywhere).")
        section.blocks.append(table)
        return section
    panels = []
    for (dataset, bench, metric), part in regret.groupby(["dataset", "benchmark", METRIC], sort=True):
        names = [f"{int(b):,} (chose {c})" for b, c in zip(part["budget"], part["chosen"], strict=True)]
        values = [v * 100 if fmt.metric_is_fraction(metric) else v for v in part["regret"].fillna(0)]
        panels.append((f"{dataset}: {benchmark_label(bench, metric)}", names, values))
    label = "Regret of choosing at the smallest budget"
    svg = figures.bars(panels, "points lost against the best strategy", label)
    section.blocks.append(Figure(label, svg, table=table))
    return section

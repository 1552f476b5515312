"""The figures about agreement and cost: benchmark correlations (Figs. 4, 11), LoRA vs full fine-tuning
(Fig. 7), cost vs performance with the Pareto front (Figs. 1, 6, 12, 13), and selection overlap.

Views from `selbench.analysis.correlations`, `.pareto` and `.overlap`; overlap reads the selection manifests
the plan points to (the results table keeps only each selection's `ids_sha256`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from selbench.analysis.correlations import (
    benchmark_correlations,
    lora_vs_full_correlation,
    lora_vs_full_pairs,
)
from selbench.analysis.overlap import overlap_matrix
from selbench.analysis.pareto import cost_performance
from selbench.analysis.tables import FULL, METRIC
from selbench.report import figures
from selbench.report import format as fmt
from selbench.report.document import Figure, Section, Table
from selbench.report.labels import benchmark_label, only_primary, selection_label, setup_label, several_setups

N_BOOT = 1000


def _rho(row: Any, name: str) -> str:
    if fmt.missing(row[name]):
        return fmt.DASH
    low, high = row[f"{name}_low"], row[f"{name}_high"]
    interval = "" if fmt.missing(low) else f" [{fmt.number(low)}, {fmt.number(high)}]"
    return f"{fmt.number(row[name])}{interval}"


def _correlation_table(title: str, table: pd.DataFrame, points: str) -> Table:
    header = ["A", "B", f"n ({points})", "Spearman ρ [95% CI]", "Kendall τ-b [95% CI]"]
    rows = [[benchmark_label(r["benchmark_a"], r["metric_a"]), benchmark_label(r["benchmark_b"], r["metric_b"]),
             str(int(r["n"])), _rho(r, "spearman"), _rho(r, "kendall")] for _, r in table.iterrows()]
    return Table(title, header, rows, table.to_dict("records"))


def correlations_section(results: pd.DataFrame) -> Section:
    """Rank correlations between benchmarks over the fine-tuned models, with bootstrap intervals."""
    section = Section("correlations", "Do the benchmarks agree? (Figs. 4 and 11)")
    section.text = ["Each fine-tuned model is a point; Spearman's ρ and Kendall's τ-b rank-correlate two "
                    "benchmarks over the models that have both, with 95 % percentile-bootstrap intervals. "
                    "Low or unstable correlations mean a strategy that wins on one benchmark need not win on "
                    "another. The second table correlates each strategy's gain over random instead of raw "
                    "scores, which removes what every benchmark shares from the budget and the dataset."]
    primary = only_primary(results) if len(results) else results
    if len(results) == 0 or primary["benchmark"].nunique() < 2:
        section.absent = "Fewer than two benchmarks in this run: nothing to correlate."
        return section
    raw = benchmark_correlations(primary, n_boot=N_BOOT)
    gains = benchmark_correlations(primary, against_random=True, n_boot=N_BOOT)
    names = sorted(map(str, primary["benchmark"].unique()))  # one (primary) metric per benchmark
    matrix = np.eye(len(names))
    notes = np.full((len(names), len(names)), "", dtype=object)
    for _, r in raw.iterrows():
        i, j = names.index(str(r["benchmark_a"])), names.index(str(r["benchmark_b"]))
        matrix[i, j] = matrix[j, i] = r["spearman"] if not fmt.missing(r["spearman"]) else np.nan
        notes[i, j] = notes[j, i] = f"n={int(r['n'])}"
    label = "Spearman correlation between benchmarks over the fine-tuned models"
    svg = figures.heatmap(names, matrix, label, vmin=-1, vmax=1, cmap="RdBu", notes=notes)
    section.blocks.append(Figure(label, svg, table=_correlation_table(label, raw, "models")))
    if len(gains):
        section.blocks.append(_correlation_table("Correlation of gains over random", gains, "strategy cells"))
    else:
        section.text.append("Gains over random need random-model scores on two benchmarks; this run has them on "
                            "fewer (the head-to-head scores strategy models only).")
    if raw["n"].max() < 3:
        section.text.append("Fewer than three models share two benchmarks: a correlation needs at least three.")
    return section


def lora_section(results: pd.DataFrame) -> Section:
    """LoRA vs full fine-tuning of the same selections (Figure 7)."""
    section = Section("lora-vs-full", "LoRA vs full fine-tuning (Fig. 7)")
    section.text = ["The same selection fine-tuned fully and with LoRA: if LoRA ranks the selections as full "
                    "fine-tuning does, cheap LoRA runs can stand in for full ones when comparing strategies."]
    primary = only_primary(results) if len(results) else results
    try:
        pairs = lora_vs_full_pairs(primary) if len(primary) else pd.DataFrame()
    except ValueError as exc:
        section.absent = f"Not shown: {exc}."
        return section
    if pairs.empty:
        kinds = sorted({"LoRA" if bool(v) else "full fine-tuning" for v in results["lora"]}) if len(results) else []
        section.absent = (f"No LoRA-vs-full pairs: every cell was trained with {' and '.join(kinds)} only (Figure 7 "
                          "needs the same selections trained both ways)." if kinds else "No fine-tuned cells yet.")
        return section
    corr = lora_vs_full_correlation(primary, n_boot=N_BOOT)
    panels = []
    for (bench, metric), part in pairs.groupby(["benchmark", METRIC], sort=True):
        scale = 100 if fmt.metric_is_fraction(metric) else 1
        panels.append((benchmark_label(bench, metric),
                       part.assign(value_full=part["value_full"] * scale, value_lora=part["value_lora"] * scale)))
    label = "LoRA vs full fine-tuning, same selections"
    svg = figures.scatter_panels(panels, "value_full", "value_lora", "full fine-tuning (%)", "LoRA (%)", label,
                                 diagonal=True)
    rows = [[benchmark_label(r["benchmark"], r[METRIC]), str(int(r["n"])), _rho(r, "spearman"), _rho(r, "kendall")]
            for _, r in corr.iterrows()]
    table = Table(label, ["Benchmark", "n (pairs)", "Spearman ρ [95% CI]", "Kendall τ-b [95% CI]"], rows,
                  corr.to_dict("records"))
    section.blocks.append(Figure(label, svg, table=table))
    return section


def pareto_section(results: pd.DataFrame) -> Section:
    """Dollars (selection + training) against score, with the Pareto front."""
    section = Section("cost-vs-performance", "Cost vs performance and the Pareto front (Figs. 1, 6, 12, 13)")
    section.text = ["Each point is a strategy at a budget (random and strict-random averaged over seeds): "
                    "what its selection and training cost against its score. The dashed line joins the Pareto "
                    "front: the points that no other point beats on cost and score at once. Labels are budgets."]
    view = cost_performance(only_primary(results)) if len(results) else pd.DataFrame()
    if view.empty or view["total_cost_usd"].notna().sum() == 0:
        section.absent = "No cell with both a score and a recorded cost."
        return section
    show_setup = several_setups(results)
    for (dataset, p, lo), part in view.groupby(["dataset", "preset", "lora"], sort=True):
        panels = []
        for (bench, metric), rows in part.groupby(["benchmark", METRIC], sort=True):
            scale = 100 if fmt.metric_is_fraction(metric) else 1
            panels.append((benchmark_label(bench, metric), rows.assign(score_pct=rows["value"] * scale)))
        label = f"{dataset}: cost vs score" + (f" ({setup_label(p, lo)})" if show_setup else "")
        svg = figures.scatter_panels(panels, "total_cost_usd", "score_pct", "selection + training (USD)",
                                     "score (%)", label, front="pareto", logx=True, annotate="budget")
        header = ["Benchmark", "Strategy", "Budget", "Score", "Selection $", "Training $", "Total $", "On the front"]
        rows = [[benchmark_label(r["benchmark"], r[METRIC]),
                 str(r["strategy"]) + (f" (×{int(r['n_seeds'])})" if r["n_seeds"] > 1 else ""),
                 f"{int(r['budget']):,}", fmt.score(r["value"], r[METRIC]), fmt.usd(r["selection_cost_usd"]),
                 fmt.usd(r["train_cost_usd"]), fmt.usd(r["total_cost_usd"]), fmt.yes_no(r["pareto"])]
                for _, r in part.iterrows()]
        section.blocks.append(Figure(label, svg, table=Table(label, header, rows, part.to_dict("records"))))
    return section


def overlap_section(cells: list[Mapping[str, Any]], selections: Mapping[str, Mapping[str, Any]],
                    max_overlap: float | None) -> Section:
    """Pairwise overlap (shared ids / budget) of the selections of each dataset and budget."""
    section = Section("overlap", "Selection overlap")
    bound = f" (at most {fmt.percent(max_overlap, decimals=0)} here)" if max_overlap is not None else ""
    section.text = ["How many of a selection's examples another selection also picked (shared ÷ budget). The "
                    "random baselines are drawn with a bounded overlap with every strategy" + bound + ", "
                    "strict-random from outside every strategy's picks, so a strategy is compared with random "
                    "subsets that are mostly different examples."]
    groups: dict[tuple[str, Any], dict[str, list[str]]] = {}
    for cell in cells:
        manifest = selections.get(str(cell.get("selection")))
        if manifest is None or cell.get("strategy") == FULL:
            continue
        name = selection_label(cell.get("strategy"), cell.get("seed"))
        groups.setdefault((str(cell.get("dataset")), manifest.get("budget")), {})[name] = list(manifest["ids"])
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        section.absent = "No two selection manifests of one dataset and budget were found in the run folder."
        return section
    for (dataset, budget), sels in sorted(groups.items(), key=lambda kv: (kv[0][0], int(kv[0][1] or 0))):
        names = sorted(sels)
        overlap, jaccard = overlap_matrix({n: sels[n] for n in names})
        matrix = np.array([[overlap[a][b] for b in names] for a in names]) * 100
        label = f"{dataset}, budget {int(budget or 0):,}: overlap (% of the row's selection)"
        svg = figures.heatmap(names, matrix, label, vmin=0, vmax=100, cmap="Blues", fmt="{:.0f}%")
        rows = [[a, *(fmt.percent(overlap[a][b], decimals=0) for b in names)] for a in names]
        data = [{"a": a, "b": b, "overlap": overlap[a][b], "jaccard": jaccard[a][b]} for a in names for b in names]
        section.blocks.append(Figure(label, svg, table=Table(label, ["", *names], rows, data)))
    return section

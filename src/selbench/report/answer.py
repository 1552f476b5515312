"""The verdict section: does each strategy beat random, and is it worth what it costs? (first in the report)

Built on `selbench.analysis.verdict.verdict_table`: per (dataset, budget, setup, benchmark) x strategy, the
calibrated comparison with the random seeds (or the head-to-head against the random models), Holm-corrected
over the whole table, and the cost columns. This module only words and formats it.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from selbench.analysis.verdict import BEATS, LOSES, TIES, UNTESTED, verdict_table
from selbench.report import format as fmt
from selbench.report.document import Section, Table
from selbench.report.labels import selection_label, setup_label, several_setups

ALPHA = 0.05
_STYLE = {BEATS: "v-beats", TIES: "v-ties", LOSES: "v-loses", UNTESTED: "v-untested"}


def _ci(row: Any) -> str:
    """Δ and its interval; bounds beyond what the scale allows (±100 points of a per-item score in [0, 1],
    ±50 for the head-to-head) are shown as "≤ −100.0 pts" (three seeds can leave the interval that wide)."""
    if fmt.missing(row["delta"]):
        return fmt.DASH
    if fmt.missing(row["ci_low"]) or fmt.missing(row["ci_high"]):
        return fmt.points(row["delta"])
    bound = 0.5 if row["test"] == "head-to-head" else 1.0
    low = f"≤ {fmt.points(-bound)}" if row["ci_low"] < -bound else fmt.points(row["ci_low"])
    high = f"≥ {fmt.points(bound)}" if row["ci_high"] > bound else fmt.points(row["ci_high"])
    return f"{fmt.points(row['delta'])} [{low}, {high}]"


def _evidence(row: Any) -> str:
    parts = []
    if not fmt.missing(row["n_items"]):
        parts.append(f"{int(row['n_items']):,} items")
    if not fmt.missing(row["n_seeds"]):
        parts.append(f"{int(row['n_seeds'])} random seeds" if row["test"] == "random seeds"
                     else f"{int(row['n_seeds'])} random opponents")
    return " · ".join(parts) or fmt.DASH


def _vs_full(row: Any) -> str:
    total, full = row["total_cost_usd"], row["full_train_cost_usd_projected"]
    if fmt.missing(total) or fmt.missing(full):
        return f"{fmt.usd(total)} vs {fmt.usd(full)}"
    word = "costs more" if total > full else "cheaper"
    return f"{fmt.usd(total)} vs {fmt.usd(full)}: {word}"


def _verdict_text(row: Any) -> str:
    if row["verdict"] == UNTESTED and isinstance(row["reason"], str) and row["reason"]:
        return f"untested ({row['reason']})"
    return str(row["verdict"])


def verdict_rows(table: pd.DataFrame, show_setup: bool) -> Table:
    """The full verdict table, one row per comparison, formatted."""
    header = ["Strategy", "Verdict", "Budget", "Benchmark", "Δ vs random [95% CI]", "p (Holm)", "Evidence",
              "Extra selection $", "Subset (selection + training) vs full fine-tuning", "Dataset",
              *(["Setup"] if show_setup else [])]
    rows, styles, data = [], [], []
    for _, row in table.iterrows():
        cells = [selection_label(row["strategy"], row["seed"]), _verdict_text(row),
                 f"{int(row['budget']):,}" if not fmt.missing(row["budget"]) else fmt.DASH, str(row["benchmark"]), _ci(row),
                 fmt.p_value(row["p_holm"]), _evidence(row), fmt.usd(row["extra_selection_usd"], sign=True),
                 _vs_full(row), str(row["dataset"]), *([setup_label(row["preset"], row["lora"])] if show_setup else [])]
        rows.append(cells)
        style = [""] * len(cells)
        style[header.index("Verdict")] = _STYLE.get(str(row["verdict"]), "")
        styles.append(style)
        data.append({k: row[k] for k in table.columns})
    return Table("Verdict per dataset, budget, benchmark and strategy", header, rows, data, styles,
                 note="Each strategy's fine-tuned model is compared with the random-selection models of the same "
                      "dataset, budget and training setup, item by item on the same benchmark items; the test carries "
                      "the spread between random seeds as well as the item-to-item noise, so one lucky random seed "
                      "does not make a strategy look better than random (selbench.analysis.stats.compare_to_random). "
                      "The AlpacaEval head-to-head judges the strategy's answers against the random models' answers "
                      f"directly. Holm-corrected over all {int(table['p_holm'].notna().sum())} tested comparisons at a "
                      f"family-wise α = {ALPHA}. Δ is in percentage points of the benchmark's per-item score "
                      "(the head-to-head: win rate − 50). Full fine-tuning is projected from the run's own "
                      "training speed when no full-data model was trained.")


def summary_rows(table: pd.DataFrame) -> Table:
    """Per strategy: how many comparisons it wins, ties, loses; what its selection costs over random."""
    header = ["Strategy", "Beats random", "Ties", "Loses", "Untested", "Extra selection $ (mean)",
              "Subset costs more than full fine-tuning"]
    rows, data = [], []
    for strategy, part in table.groupby("strategy", sort=True):
        counts = part["verdict"].value_counts()
        cells = part.drop_duplicates(["dataset", "budget", "preset", "lora", "strategy", "seed"])
        known = cells["exceeds_full"].dropna()
        more = f"{int(known.astype(bool).sum())} of {len(known)} subsets" if len(known) else fmt.DASH
        record = {"strategy": strategy, **{v: int(counts.get(v, 0)) for v in (BEATS, TIES, LOSES, UNTESTED)},
                  "extra_selection_usd_mean": float(cells["extra_selection_usd"].mean()) if len(cells) else None,
                  "subsets_costing_more_than_full": int(known.astype(bool).sum()), "subsets_with_costs": len(known)}
        rows.append([str(strategy), *(str(record[v]) for v in (BEATS, TIES, LOSES, UNTESTED)),
                     fmt.usd(record["extra_selection_usd_mean"], sign=True), more])
        data.append(record)
    return Table("Verdicts per strategy", header, rows, data)


def headline(table: pd.DataFrame) -> str:
    """One or two sentences: how many comparisons each way, and the cost side.

    >>> t = pd.DataFrame({"verdict": ["beats random", "ties", "ties"], "strategy": ["a", "a", "b"],
    ...                   "benchmark": ["x", "y", "x"], "exceeds_full": pd.array([True, True, False], dtype="boolean"),
    ...                   "dataset": "d", "budget": 8, "preset": "p", "lora": True, "seed": float("nan")})
    >>> headline(t)
    'Of 3 comparisons with random, 1 beats random after Holm correction (a on x), 2 tie and 0 lose. 1 of 2 selected subsets cost more to select and train on than fine-tuning on the whole dataset.'
    """
    if table.empty:
        return "No strategy other than random was evaluated: there is nothing to compare with random."
    counts = table["verdict"].value_counts()
    winners = table[table["verdict"] == BEATS]
    named = sorted({f"{s} on {b}" for s, b in zip(winners["strategy"], winners["benchmark"], strict=True)})
    listed = f" ({', '.join(named[:6])}{', …' if len(named) > 6 else ''})" if named else ""
    beats = int(counts.get(BEATS, 0))
    text = (f"Of {len(table)} comparisons with random, {beats} {'beats' if beats == 1 else 'beat'} random after "
            f"Holm correction{listed}, {int(counts.get(TIES, 0))} tie and {int(counts.get(LOSES, 0))} lose.")
    if counts.get(UNTESTED, 0):
        text += f" {int(counts[UNTESTED])} could not be tested."
    cells = table.drop_duplicates(["dataset", "budget", "preset", "lora", "strategy", "seed"])
    known = cells["exceeds_full"].dropna()
    if len(known):
        text += (f" {int(known.astype(bool).sum())} of {len(known)} selected subsets cost more to select and train "
                 "on than fine-tuning on the whole dataset.")
    return text


def verdict_section(results: pd.DataFrame, items: pd.DataFrame) -> tuple[Section, pd.DataFrame, str]:
    """The verdict section, the table behind it and the headline."""
    section = Section("verdict", "Verdict: does a strategy beat random, and is it worth it?")
    if results.empty:
        section.absent = "results.parquet has no fine-tuned cells yet: nothing to judge."
        return section, pd.DataFrame(), "No results yet."
    table = verdict_table(results, items, alpha=ALPHA)
    table = table.sort_values(["dataset", "budget", "preset", "lora", "benchmark", "strategy", "seed"],
                              kind="stable").reset_index(drop=True)
    section.text = ["Beats random / loses: significant after Holm correction across the whole table; ties "
                    "otherwise. Extra selection $: what the strategy's selection cost beyond random selection's."]
    if table.empty:
        section.absent = "Only random baselines were evaluated: there is no strategy to compare."
        return section, table, headline(table)
    section.blocks = [summary_rows(table), verdict_rows(table, several_setups(results))]
    return section, table, headline(table)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """{verdict: count} over the table, every verdict present (JSON summary)."""
    counts = table["verdict"].value_counts() if len(table) else pd.Series(dtype=int)
    return {v: int(counts.get(v, 0)) for v in (BEATS, TIES, LOSES, UNTESTED)}


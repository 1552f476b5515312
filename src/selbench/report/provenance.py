"""The cost tables (Chasing Random's Tables 2 and 6) and the run's provenance.

Cost: Table 6 (selection cost per 1,000 pool examples) and Table 2 (total selection cost next to fine-tuning
on the whole dataset) come from `selbench.cost.tables`, fed from the run folder: the selection manifests the
plan points to (scoring counted once per scorer config) and the results table's training costs. Full
fine-tuning is the `full` cells' measured cost when the grid trained one, else the results table's own
projection (`full_train_cost_usd_projected`, random cells preferred), the same number the verdict compares
against.

Provenance: the grid as resolved, the plan's steps, the data hashes, the base model and tokenizer
fingerprints and library versions recorded in each fine-tuned model's store `meta.json`, and any file the
plan names that was not found.
"""

from __future__ import annotations

import datetime as dt
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from selbench.analysis.tables import FULL, RANDOM, STRICT_RANDOM
from selbench.cost.tables import (
    TrainCost,
    manifest_selection_cost,
    selection_cost_rows,
    selection_vs_full_rows,
)
from selbench.report import format as fmt
from selbench.report.document import Code, Section, Table
from selbench.report.labels import selection_label
from selbench.report.run_folder import RunFolder

_REPORT_LIBRARIES = ("selbench", "numpy", "pandas", "scipy", "matplotlib", "pyarrow")


def _dataset_shas(run: RunFolder) -> dict[str, str]:
    """dataset folder name -> sha256, from the selection manifests."""
    out = {}
    for manifest in run.selections.values():
        data = manifest.get("dataset") or {}
        if data.get("path") and data.get("sha256"):
            out[Path(str(data["path"])).name] = str(data["sha256"])
    return out


def _trains(run: RunFolder, shas: dict[str, str]) -> tuple[list[TrainCost], dict[str, tuple[float, float]]]:
    """Training costs of every cell, and the run's own projection of full fine-tuning per dataset sha256."""
    cells = run.results.drop_duplicates(["dataset", "budget", "strategy", "seed", "preset", "lora"])
    trains, projected = [], {}
    for _, r in cells.iterrows():
        if fmt.missing(r["train_cost_usd"]) or str(r["dataset"]) not in shas:
            continue
        n = r.get("n_selected")
        trains.append(TrainCost(shas[str(r["dataset"])], str(r["strategy"]),
                                int(n) if not fmt.missing(n) else int(r["budget"]), float(r["train_cost_usd"]),
                                0.0 if fmt.missing(r["train_seconds"]) else float(r["train_seconds"])))
    for name, part in cells.groupby("dataset"):
        if str(name) not in shas:
            continue
        known = part[part["full_train_cost_usd_projected"].notna()]
        uniform = known[known["strategy"].isin([RANDOM, STRICT_RANDOM])]
        basis = uniform if len(uniform) else known
        if basis.empty:
            continue
        usd = float(basis["full_train_cost_usd_projected"].mean())
        rate = (basis["train_cost_usd"] / basis["train_seconds"]).replace([float("inf")], float("nan")).mean()
        projected[shas[str(name)]] = (usd, usd / rate if rate and rate == rate else float("nan"))
    return trains, projected


def cost_section(run: RunFolder) -> Section:
    """Tables 6 and 2 of the study, for this run."""
    section = Section("cost", "What selection costs (Tables 2 and 6)")
    section.text = ["Scoring touches every example of the pool, so a model-based strategy's selection cost "
                    "grows with the pool, not with the budget; random selection is nearly free. Each scoring "
                    "run is counted once, however many budgets reuse it, at the cost recorded when it ran."]
    sels = [manifest_selection_cost(m) for m in run.selections.values() if m.get("strategy") != FULL]
    if not sels:
        section.absent = "No selection manifest was found in the run folder: no cost tables."
        return section
    shas = _dataset_shas(run)
    trains, projected = _trains(run, shas)
    per_k = selection_cost_rows(sels)
    section.blocks.append(Table(
        "Table 6: selection cost per 1,000 pool examples",
        ["Dataset", "Strategy", "Pool", "Selections", "Scoring", "One selection", "Per 1,000 examples"],
        [[r["dataset"], r["strategy"], f"{r['pool_size']:,}", str(r["n_selections"]),
          f"{fmt.seconds(r['scoring_seconds'])} · {fmt.usd(r['scoring_usd'])}",
          f"{fmt.seconds(r['selection_seconds'])} · {fmt.usd(r['selection_usd'])}",
          f"{fmt.seconds(r['seconds_per_1k'])} · {fmt.usd(r['usd_per_1k'])}"] for r in per_k], per_k,
        note="Wall clock and dollars at the run's price sheet (default: the study's 8 USD per node-hour)."))
    vs_full = selection_vs_full_rows(sels, trains, projected)
    section.blocks.append(Table(
        "Table 2: total selection cost vs fine-tuning on the whole dataset",
        ["Dataset", "Strategy", "Selections", "Selection total", "Full fine-tuning", "Selection ÷ full"],
        [[r["dataset"], r["strategy"], str(r["n_selections"]), fmt.usd(r["total_selection_usd"]),
          fmt.usd(r["full_finetune_usd"]) + (" (projected)" if r["full_finetune_projected"] else ""),
          fmt.DASH if r["ratio"] is None else f"{r['ratio']:.2f}×"] for r in vs_full], vs_full,
        note="Projected: no model was trained on the whole dataset; its cost is the run's own projection from "
             "the measured training speed and the pool's token counts."))
    return section


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def provenance_section(run: RunFolder) -> Section:
    """Grid, plan, data hashes, model fingerprints and library versions."""
    section = Section("provenance", "Provenance")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    cells = run.cells()
    with_results = set(map(str, run.results["cell"])) if "cell" in run.results.columns else set()
    steps = [s for s in run.plan.get("steps") or [] if isinstance(s, dict)]
    facts = [("Run folder", str(run.path)), ("Report written", now), ("Base model", run.base_model or fmt.DASH),
             ("Cells planned", str(len(cells)) if cells else fmt.DASH),
             ("Cells with results", str(len(with_results) or len(run.results.drop_duplicates(
                 ["dataset", "budget", "strategy", "seed", "preset", "lora"])))),
             ("Steps planned", str(len(steps)) if steps else fmt.DASH),
             ("Files not found", ", ".join(run.missing) or "none")]
    section.blocks.append(Table("Run", ["Fact", "Value"], [[k, v] for k, v in facts], [dict(facts)]))
    if run.grid:
        import yaml

        section.blocks.append(Code("Grid (grid.yaml, as resolved)", yaml.safe_dump(run.grid, sort_keys=False), "yaml"))
    if run.datasets:
        rows, data = [], []
        for name, m in sorted(run.datasets.items()):
            sub = m.get("subsample") or {}
            rows.append([name, str(m.get("source", fmt.DASH)), fmt.number(m.get("n")), fmt.short_hash(m.get("sha256")),
                         f"{sub.get('limit'):,} of pool {fmt.short_hash(sub.get('pool_sha256'))}, seed {sub.get('seed')}"
                         if sub.get("limit") else "whole pool"])
            data.append({"dataset": name, **{k: m.get(k) for k in ("source", "n", "n_dropped", "sha256",
                                                                    "parquet_sha256", "subsample", "tokens")}})
        section.blocks.append(Table("Data", ["Dataset", "Source", "Examples", "sha256", "Subsample"], rows, data))
    section.blocks.extend(_model_tables(run))
    if steps:
        kinds: dict[str, list[int]] = {}
        for s in steps:
            entry = kinds.setdefault(str(s.get("kind")), [0, 0])
            entry[0] += 1
            entry[1] += int(bool(s.get("cached")))
        section.blocks.append(Table(
            "Steps (plan.json)", ["Step", "Key", "Cached when planned"],
            [[str(s.get("id")), fmt.short_hash(s.get("key")), fmt.yes_no(s.get("cached"))] for s in steps],
            [{k: s.get(k) for k in ("id", "kind", "step", "key", "cached", "describe")} for s in steps],
            note=", ".join(f"{k}: {n} ({c} cached)" for k, (n, c) in sorted(kinds.items()))))
    return section


def _model_tables(run: RunFolder) -> list[Table]:
    tables = []
    cells = {str(c.get("id")): c for c in run.cells()}
    if run.models:
        rows, data, libraries = [], [], {}
        for cell_id, meta in sorted(run.models.items()):
            inputs = meta.get("inputs") or {}
            model = inputs.get("model") if isinstance(inputs.get("model"), dict) else {"model": inputs.get("model")}
            cell = cells.get(cell_id, {})
            rows.append([selection_label(cell.get("strategy"), cell.get("seed")), str(cell.get("budget") or FULL),
                         str(cell.get("preset", fmt.DASH)), fmt.short_hash(meta.get("key")),
                         fmt.short_hash(model.get("model_sha256")), fmt.short_hash(model.get("tokenizer_sha256")),
                         fmt.short_hash(inputs.get("ids")), fmt.short_hash(inputs.get("dataset"))])
            data.append({"cell": cell_id, "key": meta.get("key"), "inputs": inputs, "libraries": meta.get("libraries")})
            for lib, ver in (meta.get("libraries") or {}).items():
                libraries.setdefault(lib, set()).add(str(ver))
        tables.append(Table("Fine-tuned models (store meta.json)",
                            ["Selection", "Budget", "Preset", "Step key", "Base weights sha256", "Tokenizer sha256",
                             "Selected ids sha256", "Data sha256"], rows, data))
        tables.append(Table("Libraries recorded when training", ["Library", "Version"],
                            [[k, ", ".join(sorted(v))] for k, v in sorted(libraries.items())],
                            [{"library": k, "versions": sorted(v)} for k, v in sorted(libraries.items())]))
    report_libs = _versions(_REPORT_LIBRARIES)
    tables.append(Table("Libraries that wrote this report", ["Library", "Version"],
                        [[k, v] for k, v in report_libs.items()], [report_libs]))
    if "ids_sha256" in run.results.columns and len(run.results):
        sel = run.results.drop_duplicates(["dataset", "budget", "strategy", "seed", "preset", "lora"])
        tables.append(Table("Selections (results.parquet)", ["Dataset", "Budget", "Selection", "ids sha256"],
                            [[str(r["dataset"]), f"{int(r['budget']):,}", selection_label(r["strategy"], r["seed"]),
                              fmt.short_hash(r["ids_sha256"])] for _, r in sel.iterrows()],
                            sel[["dataset", "budget", "strategy", "seed", "ids_sha256"]].to_dict("records")))
    return tables


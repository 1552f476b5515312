"""Read a run folder: the only I/O of the report (DESIGN.md "The study": the report reads only these files).

* `results.parquet` (required) and `items.parquet` (`selbench.analysis.tables`); the base model's rows
  (`strategy` = "base", no dataset or budget) are kept apart from the cells';
* `grid.yaml` (the grid as resolved) and `plan.json` (steps with their keys, cells with their selection
  manifest and model paths);
* the files those point to: each cell's selection manifest, the dataset manifest beside the data each
  selection read, and the `meta.json` of each fine-tuned model's store folder (base model and tokenizer
  fingerprints, library versions).

A run folder that was moved keeps working: paths recorded under the old run folder are looked up under the
new one. A file the plan names but that is gone is listed in `missing` (the report says so); a file that
exists but is malformed is bad input (InputError naming it, exit 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from selbench.analysis.tables import (
    BUDGET,
    ITEMS_COLUMNS,
    LORA,
    STRATEGY,
    read_items,
    read_results,
)
from selbench.errors import InputError

BASE = "base"  # the base model's rows in the results tables (selbench.runner.results)
RESULTS_FILE = "results.parquet"
ITEMS_FILE = "items.parquet"
GRID_FILE = "grid.yaml"
PLAN_FILE = "plan.json"


@dataclass
class RunFolder:
    """What the report knows about one run.

    Args:
        path: the run folder.
        results / items: the cells' rows (base model rows removed; budgets as integers, `lora` as bool).
        base_results / base_items: the base model's rows (empty when it was not evaluated).
        grid: `grid.yaml` as a mapping ({} when absent).
        plan: `plan.json` ({} when absent).
        selections: selection manifest path (as the plan names it) -> manifest.
        datasets: dataset folder name -> its `manifest.json`.
        models: cell id -> the `meta.json` of its fine-tuned model's store folder.
        missing: files the report looked for and did not find (relative to the run folder when inside it).
    """

    path: Path
    results: pd.DataFrame
    items: pd.DataFrame
    base_results: pd.DataFrame
    base_items: pd.DataFrame
    grid: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    selections: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def base_model(self) -> str | None:
        """The grid's base model spec."""
        model = self.grid.get("model")
        return str(model) if model else None

    def cells(self) -> list[dict[str, Any]]:
        """The plan's cells (id, dataset, budget, strategy, seed, preset, lora, selection, model)."""
        return [c for c in self.plan.get("cells") or [] if isinstance(c, dict)]


def _split_base(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    is_base = frame[STRATEGY].astype(str) == BASE
    cells = frame[~is_base].reset_index(drop=True)
    if len(cells) and cells[BUDGET].notna().all():
        cells[BUDGET] = cells[BUDGET].astype("int64")
    if len(cells) and cells[LORA].notna().all():
        cells[LORA] = cells[LORA].astype(bool)
    return cells, frame[is_base].reset_index(drop=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc.msg}", path=path, line=exc.lineno) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", path=path) from None


def _read_grid(path: Path) -> dict[str, Any]:
    import yaml

    try:
        grid = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"not YAML: {getattr(exc, 'problem', exc)}", path=path,
                         line=mark.line + 1 if mark is not None else None) from None
    if grid is None:
        return {}
    if not isinstance(grid, dict):
        raise InputError("a grid is a mapping of keys (out, model, datasets, ...)", path=path)
    return grid


class _Paths:
    """Maps paths recorded in the plan (under the run folder as it was) to the run folder as it is."""

    def __init__(self, run: Path, recorded: str | None) -> None:
        self.run = run
        self.recorded = Path(recorded) if recorded else None

    def local(self, path: str | Path) -> Path:
        p = Path(path)
        if not p.is_absolute():
            return self.run / p
        if self.recorded is not None and not p.exists():
            try:
                return self.run / p.relative_to(self.recorded)
            except ValueError:
                return p
        return p

    def show(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.run))
        except ValueError:
            return str(path)


def read_run(run_dir: str | Path) -> RunFolder:
    """Read everything the report needs from `run_dir` (see the module docstring).

    Raises:
        InputError: `run_dir` is not a folder, `results.parquet` is missing or malformed, or a file the
            plan points to is malformed.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise InputError("not a folder (a run folder holds results.parquet, grid.yaml, plan.json)", path=run)
    results, base_results = _split_base(read_results(run / RESULTS_FILE))
    missing: list[str] = []
    if (run / ITEMS_FILE).is_file():
        items, base_items = _split_base(read_items(run / ITEMS_FILE))
    else:
        missing.append(ITEMS_FILE)
        items = pd.DataFrame(columns=list(ITEMS_COLUMNS))
        base_items = items.copy()
    grid: dict[str, Any] = {}
    if (run / GRID_FILE).is_file():
        grid = _read_grid(run / GRID_FILE)
    else:
        missing.append(GRID_FILE)
    plan: dict[str, Any] = {}
    if (run / PLAN_FILE).is_file():
        plan = _read_json(run / PLAN_FILE)
        if not isinstance(plan, dict):
            raise InputError("plan.json is a JSON object with 'steps' and 'cells'", path=run / PLAN_FILE)
    else:
        missing.append(PLAN_FILE)
    folder = RunFolder(run, results, items, base_results, base_items, grid, plan, missing=missing)
    _read_pointed(folder, _Paths(run, plan.get("run_dir")))
    return folder


def _read_pointed(folder: RunFolder, paths: _Paths) -> None:
    """Selection manifests, dataset manifests and model store metadata named by the plan's cells."""
    from selbench.selection.manifest import load_manifest

    for cell in folder.cells():
        recorded = cell.get("selection")
        if recorded and recorded not in folder.selections:
            path = paths.local(recorded)
            if path.is_file():
                manifest = load_manifest(path)
                folder.selections[recorded] = manifest
                data = (manifest.get("dataset") or {}).get("path")
                if data:
                    data_manifest = paths.local(data) / "manifest.json"
                    name = Path(str(data)).name
                    if name not in folder.datasets:
                        if data_manifest.is_file():
                            folder.datasets[name] = _read_json(data_manifest)
                        else:
                            folder.missing.append(paths.show(data_manifest))
            else:
                folder.missing.append(paths.show(path))
        model = cell.get("model")
        if model and cell.get("id"):
            meta = paths.local(model) / "meta.json"
            if meta.is_file():
                found = _read_json(meta)
                if isinstance(found, dict):
                    folder.models[str(cell["id"])] = found
            elif (folder.results.get("cell") is not None
                  and (folder.results["cell"].astype(str) == str(cell["id"])).any()):
                folder.missing.append(paths.show(meta))

"""`selbench cost RUN_DIR`: the study's cost tables (Tables 2 and 6) from a run folder's cost records."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import JsonOption, emit, handle_errors
from selbench.errors import InputError


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@handle_errors
def cost(
    run_dir: Path = typer.Argument(..., help="Folder holding selection manifests and training records."),
    prices: Path | None = typer.Option(None, "--prices", help="Price sheet YAML to re-price every record."),
    as_json: bool = JsonOption,
) -> None:
    """Selection cost per 1,000 examples per strategy, and total selection cost vs full fine-tuning.

    Examples:

      selbench cost runs/study --json

      selbench cost runs/study --prices prices.yaml
    """
    from selbench.cost import load_price_sheet
    from selbench.cost.tables import collect_costs, selection_cost_rows, selection_vs_full_rows

    if not run_dir.is_dir():
        raise InputError("not a folder", path=run_dir, field="run_dir")
    sheet = load_price_sheet(prices) if prices is not None else None
    selections, trains = collect_costs(run_dir, sheet)
    result = {
        "selection_per_1k": selection_cost_rows(selections),
        "selection_vs_full": selection_vs_full_rows(selections, trains),
        "n_manifests": len(selections),
        "n_train_records": len(trains),
    }
    if as_json:
        emit(result, True)
        return
    from rich.console import Console
    from rich.table import Table

    # Wide enough for the tables when stdout is a file or a pipe (rich would assume 80 columns).
    console = Console() if sys.stdout.isatty() else Console(width=160)
    columns = {
        "selection_per_1k": ("Selection cost per 1,000 pool examples (Table 6)",
                             ["dataset", "strategy", "pool_size", "n_selections", "scoring_usd", "selection_usd",
                              "usd_per_1k", "seconds_per_1k"]),
        "selection_vs_full": ("Total selection cost vs fine-tuning on the full dataset (Table 2; projected when no full run exists)",
                              ["dataset", "strategy", "n_selections", "total_selection_usd", "full_finetune_usd",
                               "ratio"]),
    }
    for key, (title, names) in columns.items():
        table = Table(title=title)
        for name in names:
            table.add_column(name, justify="left" if name in ("dataset", "strategy") else "right")
        for row in result[key]:
            table.add_row(*(_fmt(row[name]) for name in names))
        console.print(table)
    if not selections:
        console.print(f"no selection manifests under {run_dir}")

"""`selbench select ...`: one command per strategy, plus `overlap` between manifests.

Thin over `selbench.selection.manifest.run_selection` and `selbench.analysis.overlap`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import JsonOption, check_writable, emit, handle_errors

app = typer.Typer(
    help=(
        "Select a subset of a prepared dataset and write a selection manifest.\n\n"
        "Examples:\n\n"
        "  selbench select longest --data runs/alpaca --budget 1000 --out sel/longest-1k.json --json\n\n"
        "  selbench select random --data runs/alpaca --budget 1000 --seed 1 --against sel/longest-1k.json "
        "--out sel/random-1k-s1.json\n\n"
        "  selbench select strict-random --data runs/alpaca --budget 1000 --against sel/longest-10k.json "
        "--out sel/strict-1k.json\n\n"
        "  selbench select overlap sel/longest-1k.json sel/random-1k-s1.json --json"
    ),
    no_args_is_help=True,
)

DataOption = typer.Option(..., "--data", help="Prepared dataset folder (from `selbench data prepare`).")
BudgetOption = typer.Option(..., "--budget", help="Number of examples to select.")
SeedOption = typer.Option(0, "--seed", help="Seed of the strategy's random generator.")
OutOption = typer.Option(..., "--out", help="Selection manifest to write (JSON).")
PricesOption = typer.Option(None, "--prices", help="Price sheet YAML (default: 8 USD per node-hour).")
AgainstOption = typer.Option([], "--against", help="Manifest of another selection (repeatable).")


def _run(strategy: str, data: Path, budget: int | None, seed: int, out: Path, as_json: bool,
         prices: Path | None, params: dict[str, Any] | None = None, against: list[Path] | None = None) -> None:
    from selbench.cost import load_price_sheet
    from selbench.errors import InputError
    from selbench.selection.manifest import run_selection

    if out.is_dir():  # checked before any work: the manifest is a file
        raise InputError("is a folder; expected the manifest's file path (FILE.json)", path=out, field="out")
    check_writable(out)
    run = run_selection(data, strategy, budget, out, params=params, seed=seed, against=against or (),
                        prices=load_price_sheet(prices))
    manifest = run.manifest
    result = {
        "n_selected": len(manifest["ids"]),
        "ids_sha256": manifest["ids_sha256"],
        "seconds": run.seconds,
        "cost_usd": manifest["cost"]["usd"],
        "out": str(out),
        "cached": run.cached,
    }
    if manifest["overlap"]:
        result["overlap"] = manifest["overlap"]
    if manifest["fallback"]["used"]:
        result["fallback"] = manifest["fallback"]["reason"]
    emit(result, as_json)


@app.command("longest")
@handle_errors
def longest(
    data: Path = DataOption,
    budget: int = BudgetOption,
    out: Path = OutOption,
    seed: int = SeedOption,
    unit: str = typer.Option("chars", "--unit", help="Length unit: chars (the study's) or tokens."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="Tokenizer folder or model spec (--unit tokens)."),
    prices: Path | None = PricesOption,
    as_json: bool = JsonOption,
) -> None:
    """The examples with the longest responses (ties: as the study, a --seed shuffle then a stable sort)."""
    _run("longest", data, budget, seed, out, as_json, prices, params={"unit": unit, "tokenizer": tokenizer})


@app.command("random")
@handle_errors
def random(
    data: Path = DataOption,
    budget: int = BudgetOption,
    out: Path = OutOption,
    seed: int = SeedOption,
    against: list[Path] = AgainstOption,
    max_overlap: float = typer.Option(0.3, "--max-overlap", help="Allowed overlap (shared / budget) per --against."),
    max_tries: int = typer.Option(2000, "--max-tries", help="Draws before falling back, with several --against."),
    prices: Path | None = PricesOption,
    as_json: bool = JsonOption,
) -> None:
    """A uniform random subset; with --against, conditioned on overlap <= --max-overlap with each."""
    _run("random", data, budget, seed, out, as_json, prices,
         params={"max_overlap": max_overlap, "max_tries": max_tries}, against=against)


@app.command("strict-random")
@handle_errors
def strict_random(
    data: Path = DataOption,
    budget: int = BudgetOption,
    out: Path = OutOption,
    seed: int = SeedOption,
    against: list[Path] = AgainstOption,
    reference_budget: int = typer.Option(10_000, "--reference-budget",
                                         help="Leading ids of each --against selection to exclude."),
    prices: Path | None = PricesOption,
    as_json: bool = JsonOption,
) -> None:
    """A uniform random subset of the examples none of the --against selections picked."""
    _run("strict-random", data, budget, seed, out, as_json, prices,
         params={"reference_budget": reference_budget}, against=against)


@app.command("full")
@handle_errors
def full(
    data: Path = DataOption,
    out: Path = OutOption,
    budget: int | None = typer.Option(None, "--budget", help="Must equal the pool size when given."),
    seed: int = SeedOption,
    prices: Path | None = PricesOption,
    as_json: bool = JsonOption,
) -> None:
    """The whole pool, in dataset order."""
    _run("full", data, budget, seed, out, as_json, prices)


@app.command("overlap")
@handle_errors
def overlap(
    manifests: list[Path] = typer.Argument(..., help="Selection manifests to compare."),
    as_json: bool = JsonOption,
) -> None:
    """Pairwise overlap (shared ids / row's budget) and Jaccard between selection manifests."""
    from selbench.analysis.overlap import overlap_matrix
    from selbench.selection.manifest import load_manifest, manifest_names

    names = manifest_names(manifests)
    selections = {name: load_manifest(path)["ids"] for name, path in zip(names, manifests, strict=True)}
    overlap_m, jaccard_m = overlap_matrix(selections)
    result = {"overlap": overlap_m, "jaccard": jaccard_m, "manifests": dict(zip(names, map(str, manifests), strict=True))}
    if as_json:
        emit(result, True)
        return
    from rich.console import Console
    from rich.table import Table

    # Wide enough for the tables when stdout is a file or a pipe (rich would assume 80 columns).
    console = Console() if sys.stdout.isatty() else Console(width=160)
    for title, matrix in (("overlap (shared / row budget)", overlap_m), ("Jaccard", jaccard_m)):
        table = Table(title=title)
        table.add_column("")
        for name in names:
            table.add_column(name, justify="right")
        for row in names:
            table.add_row(row, *(f"{matrix[row][col]:.3f}" for col in names))
        console.print(table)

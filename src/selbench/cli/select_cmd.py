"""`selbench select ...`: one command per registered strategy, plus `overlap` between manifests.

The strategy commands are generated from the `STRATEGIES` registry (`selbench.cli.registry_cmds`): each
field of a strategy's dataclass is an option. Thin over `selbench.selection.manifest.run_selection` and
`selbench.analysis.overlap`.
"""

from __future__ import annotations

import inspect
import logging
import sys
from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import JsonOption, check_writable, emit, handle_errors
from selbench.cli.registry_cmds import JSON_PARAM, SELECT_COMMON, config_options, make_command, summary_line

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


def _strategy_command(name: str) -> None:
    """Mount `selbench select <name>` with the strategy's fields as options."""
    from selbench.selection.base import STRATEGIES

    cls = STRATEGIES.get(name)
    needs_budget = getattr(cls, "needs_budget", True)
    common = [
        inspect.Parameter("data", inspect.Parameter.KEYWORD_ONLY, default=DataOption, annotation=Path),
        inspect.Parameter("budget", inspect.Parameter.KEYWORD_ONLY, annotation=int | None,
                          default=BudgetOption if needs_budget else typer.Option(
                              None, "--budget", help=getattr(cls, "budget_help",
                                                             "Must equal the pool size when given."))),
        inspect.Parameter("out", inspect.Parameter.KEYWORD_ONLY, default=OutOption, annotation=Path),
        inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=SeedOption, annotation=int),
    ]
    if getattr(cls, "uses_against", False):
        common.append(inspect.Parameter("against", inspect.Parameter.KEYWORD_ONLY, default=AgainstOption,
                                        annotation=list[Path]))
    common += [inspect.Parameter("prices", inspect.Parameter.KEYWORD_ONLY, default=PricesOption,
                                 annotation=Path | None), JSON_PARAM]

    def body(options: dict[str, Any], params: dict[str, Any]) -> None:
        _run(name, options["data"], options["budget"], options["seed"], options["out"], options["as_json"],
             options["prices"], params=params, against=options.get("against"))

    command = make_command(name, summary_line(cls), common, config_options(cls, SELECT_COMMON), body)
    app.command(name)(command)


def _mount_strategies() -> None:
    from selbench.selection.base import STRATEGIES

    for name in STRATEGIES.names():
        if name == "overlap":
            continue
        try:
            _strategy_command(name)
        except Exception as exc:  # a broken plug-in must not take the whole CLI down
            logging.getLogger(__name__).warning("strategy %r has no command: %s", name, exc)


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


_mount_strategies()

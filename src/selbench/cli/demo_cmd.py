"""`selbench demo`: `selbench run configs/demo.yaml` (scaled by `--size`) + `selbench report`, offline."""

from __future__ import annotations

from pathlib import Path

import typer

from selbench.cli.common import JsonOption, check_writable, emit, handle_errors


@handle_errors
def demo(
    size: str = typer.Option("small", "--size",
                             help="small (the grid as shipped: a laptop CPU), medium or large (bigger subsample, "
                                  "budgets and benchmark limits for a GPU or a many-core machine)."),
    out: Path | None = typer.Option(None, "--out", help="Run folder (default: runs/demo, runs/demo-SIZE)."),
    workers: int | None = typer.Option(None, "--workers", help="Most steps at once."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress",
                                         help="Progress display with an ETA (default: on a terminal)."),
    as_json: bool = JsonOption,
) -> None:
    """Run the demo study (the packaged ShareGPT pool, SmolLM2-135M, Longest vs random baselines, IFEval,
    LLMBar and the AlpacaEval head-to-head judged locally), then print its verdict and write its report.
    Everything is cached: a second run is quick, an interrupted one resumes. Exit 1 when a cell failed.

    Examples:

      selbench demo

      selbench demo --size medium --json
    """
    from selbench.runner.demo import run_demo

    if out is not None:
        check_writable(out)
    result = run_demo(size, out=out, progress=progress, workers=workers)
    run = result["run"]
    if as_json:
        emit({"report": result["report"], "markdown": result["markdown"], "json": result["json"],
              "seconds": round(result["seconds"], 1), "verdicts": result["verdicts"], "cells": run["cells"],
              "failed": run["failed"], "cost_usd": run["cost_usd"], "run_dir": run["run_dir"]}, True)
    else:
        typer.echo(result["text"])
        typer.echo(f"\n{run['cells']} cells ({run['failed']} failed), study cost ${run['cost_usd']:,.2f}, "
                   f"{result['seconds']:.0f} s")
        for failure in run["failures"]:
            typer.echo(f"failed {failure['step']}: {failure['error']}")
        typer.echo(f"report: {result['report']}")
    if run["failed"]:
        raise typer.Exit(1)

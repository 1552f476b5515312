"""`selbench run GRID.yaml`: the whole study, planned, resumable, locally or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import JsonOption, emit, handle_errors


def _dry_human(dry: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    from selbench.runner.progress import format_seconds

    console = Console()
    summary = dry.summary()
    kinds = Table("step", "planned", "cached", "to run", "est. time", "est. USD", title=f"plan of {dry.plan.run_dir}")
    rows: dict[str, list[float]] = {}  # planned, cached, seconds, usd; evaluations per benchmark
    for node in dry.plan.nodes.values():
        row = rows.setdefault(node.kind if node.kind != "eval" else f"eval {node.benchmark}", [0, 0, 0.0, 0.0])
        row[0] += 1
        row[1] += int(dry.status[node.id].cached)
        row[2] += dry.estimate.seconds.get(node.id, 0.0)
        row[3] += dry.estimate.usd.get(node.id, 0.0)
    for kind, (planned, cached, seconds, usd) in rows.items():
        kinds.add_row(kind, str(planned), str(cached), str(planned - cached), format_seconds(seconds), f"${usd:,.2f}")
    if dry.estimate.extra_seconds or dry.estimate.extra_usd:
        kinds.add_row("unregistered", "", "", "", format_seconds(dry.estimate.extra_seconds),
                      f"${dry.estimate.extra_usd:,.2f}")
    cells = Table("cell", "select", "train", *dry.grid.benchmarks.names(), title=f"{summary['cells']} cells")
    mark = {True: "[green]cached[/green]", False: "to run"}
    for cell in dry.plan.cells:
        cells.add_row(cell.id, mark[dry.status[cell.selection].cached], mark[dry.status[cell.train].cached],
                      *(mark[dry.status[cell.evals[b]].cached] if b in cell.evals else "-"
                        for b in dry.grid.benchmarks.names()))
    console.print(cells)
    console.print(kinds)
    tp = summary["throughputs"]
    console.print(f"{summary['steps']} steps: {summary['cached']} cached, {summary['to_run']} to run; "
                  f"estimate for what is left on a {tp['device']} machine: "
                  f"[bold]{format_seconds(summary['est_seconds'])}[/bold], [bold]${summary['est_cost_usd']:,.2f}[/bold]")
    console.print(f"throughputs for {dry.grid.model}: training {tp['train_tokens_per_s']:,.1f} tokens/s "
                  f"({tp['sources']['train']}), generation {tp['generate_tokens_per_s']:,.1f} tokens/s "
                  f"({tp['sources']['generate']})")
    if dry.unregistered:
        console.print(f"[yellow]not registered in this installation (a run would refuse them): "
                      f"{', '.join(dry.unregistered)}[/yellow]")


def _run_human(summary: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console()
    console.print(f"{summary['cells']} cells: {summary['done']} done ({summary['cached']} all cached), "
                  f"{summary['failed']} failed; {summary['steps_run']} steps computed, "
                  f"{summary['steps_cached']} cached; study cost ${summary['cost_usd']:,.4f} "
                  f"(this run ${summary['spent_usd']:,.4f}), {summary['seconds']:.0f} s")
    for failure in summary["failures"]:
        console.print(f"[red]failed[/red] {failure['step']}: {failure['error']}")
    console.print(f"results: {summary['results']}\nlog: {summary['log']}\nreport: {summary['report']}")


@handle_errors
def run(
    grid: Path = typer.Argument(..., help="The grid YAML (DESIGN.md 'The study')."),
    executor: str = typer.Option(None, "--executor", help="local or ray (default: the grid's executor.kind)."),
    address: str = typer.Option(None, "--address",
                                help="Ray cluster: auto or HOST:PORT (default: the grid's; none starts a local Ray)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the estimate; compute nothing."),
    out: Path = typer.Option(None, "--out", help="Run folder (default: the grid's out)."),
    workers: int = typer.Option(None, "--workers", help="Most steps at once (local) / CPUs of a local Ray."),
    progress: bool = typer.Option(None, "--progress/--no-progress", help="Progress display (default: on a terminal)."),
    device: str = typer.Option(None, "--device",
                               help="With --dry-run: estimate for a cpu or cuda machine (default: this one)."),
    as_json: bool = JsonOption,
) -> None:
    """Run a study grid: datasets x strategies x budgets x random seeds x presets x benchmarks, every step
    cached (a killed run resumes where it stopped), results in RUN_DIR/results.parquet and items.parquet,
    the report in RUN_DIR/report/ (`selbench report`).
    Exit 1 when a cell failed (the others still run).

    Examples:

      selbench run configs/demo.yaml --dry-run

      selbench run configs/demo.yaml --json

      selbench run configs/paper.yaml --executor ray --address auto
    """
    from selbench.errors import InputError

    if executor is not None and executor not in ("local", "ray"):
        raise InputError(f"{executor!r} is not one of local, ray", field="executor")
    if address is not None and executor == "local":
        raise InputError("--address goes with --executor ray", field="address")
    if device is not None and (device not in ("cpu", "cuda") or not dry_run):
        raise InputError(f"{device!r}: --device is cpu or cuda, with --dry-run", field="device")
    if dry_run:
        from selbench.runner.study import dry_run as plan_only

        dry = plan_only(grid, out=out, device=device)
        if as_json:
            emit(dry.summary(), True)
        else:
            _dry_human(dry)
        return
    from selbench.report.study import write_study_report
    from selbench.runner.study import run_study

    try:
        report = run_study(grid, executor=executor, address=address, out=out, progress=progress, workers=workers)
    except KeyboardInterrupt:
        # Steps still running in worker threads would hold the interpreter until they finish; every finished
        # step is already in the store and nothing half-written is ever taken for a result, so leave now.
        import os
        import sys

        sys.stderr.write("error: interrupted; finished steps are kept, run the same command again to resume\n")
        sys.stderr.flush()
        os._exit(130)
    summary = report.summary()
    summary["report"] = write_study_report(report.plan.run_dir)["html"]
    emit(summary, as_json, None if as_json else _run_human)
    if summary["failed"]:
        raise typer.Exit(1)


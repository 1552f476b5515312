"""`selbench demo`: the embedded default study, offline, on CPU."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer

from selbench.cli.common import JsonOption, check_writable, emit, handle_errors


@handle_errors
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Run folder."),
    budget: int = typer.Option(32, "--budget", help="Examples per selection."),
    quick: bool = typer.Option(False, "--quick", help="Data, selection and cost only: no fine-tuning or evaluation."),
    ifeval_limit: int = typer.Option(8, "--ifeval-limit", help="IFEval prompts per model (0 skips)."),
    as_json: bool = JsonOption,
) -> None:
    """Run a miniature "Chasing Random" study on the packaged ShareGPT pool and SmolLM2, and report it.

    Examples:

      selbench demo

      selbench demo --quick --json
    """
    from selbench.runner.demo import DemoConfig, run_demo

    check_writable(out)
    config = DemoConfig(out=out, budget=budget, train=not quick, ifeval_limit=0 if quick else ifeval_limit)
    # Fine-tuning prints the HF Trainer's log dicts on stdout; stdout is reserved for the result.
    with contextlib.redirect_stdout(sys.stderr):
        report = run_demo(config)
    result = {"report": report["report"], "markdown": report["markdown"], "seconds": report["seconds"]}
    if as_json:
        emit(result, True)
        return
    typer.echo(Path(report["markdown"]).read_text(encoding="utf-8"))
    typer.echo(f"report: {report['report']} ({report['seconds']:.0f} s)")

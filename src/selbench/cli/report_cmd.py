"""`selbench report RUN_DIR`: the study's report (HTML, Markdown, JSON) from a run folder's files alone."""

from __future__ import annotations

from pathlib import Path

import typer

from selbench.cli.common import JsonOption, emit, handle_errors


@handle_errors
def report(
    run_dir: Path = typer.Argument(..., help="Run folder (results.parquet, items.parquet, grid.yaml, plan.json)."),
    out: Path | None = typer.Option(None, "--out", help="Folder for report.html/.md/.json (default: RUN_DIR/report)."),
    as_json: bool = JsonOption,
) -> None:
    """Write the verdict, the study's figures, the cost tables and the provenance of a run as one
    self-contained HTML page, with the same content as Markdown and JSON.

    Examples:

      selbench report runs/demo

      selbench report runs/my-study --out /tmp/report --json
    """
    from selbench.report.html import to_text
    from selbench.report.study import write_study_report

    written = write_study_report(run_dir, out)
    result = {"html": written["html"], "markdown": written["markdown"], "json": written["json"],
              "verdicts": written["summary"]["verdicts"], "caveats": written["summary"]["caveats"]}
    if as_json:
        emit(result, True)
        return
    typer.echo(to_text(written["report"]))
    typer.echo(f"report: {written['html']}")


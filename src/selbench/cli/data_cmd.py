"""`selbench data prepare|stats`: canonical instruction data from source files or the hub."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import JsonOption, check_writable, emit, handle_errors
from selbench.data.base import DEFAULT_MAX_CHARS, DEFAULT_MAX_PER_TASK

app = typer.Typer(
    help=(
        "Prepare instruction data (Parquet + manifest) and inspect it.\n\n"
        "Examples:\n\n"
        "  selbench data prepare --source sharegpt --input sharegpt --out runs/sharegpt --json\n\n"
        "  selbench data prepare --source jsonl --input my.jsonl --field output=completion --out runs/mine\n\n"
        "  selbench data stats runs/sharegpt"
    ),
    no_args_is_help=True,
)


def _parse_fields(fields: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"--field {item!r}: expected CANONICAL=SOURCE_FIELD, e.g. output=completion")
        mapping[key.strip()] = value.strip()
    return mapping


@app.command()
@handle_errors
def prepare(
    source: str = typer.Option(..., "--source", help="Loader: alpaca, dolly, flan, evol, sharegpt, jsonl, parquet, hf."),
    input: str = typer.Option(..., "--input", help="File path, hf://org/name (optionally @REVISION and :SPLIT), or a packaged pool (sharegpt)."),
    out: Path = typer.Option(..., "--out", help="Output folder (data.parquet + manifest.json)."),
    skip_invalid: bool = typer.Option(False, "--skip-invalid", help="Drop invalid (malformed) records, counted by reason, instead of stopping. Exact duplicates are always dropped and counted."),
    max_per_task: int = typer.Option(DEFAULT_MAX_PER_TASK, "--max-per-task", help="FLAN: keep the first N examples of each task."),
    field: list[str] = typer.Option([], "--field", help="jsonl/parquet/hf field mapping CANONICAL=SOURCE (repeatable)."),
    max_chars: int = typer.Option(DEFAULT_MAX_CHARS, "--max-chars", help="Examples longer than this are invalid."),
    as_json: bool = JsonOption,
) -> None:
    """Read a source dataset into DIR/data.parquet + DIR/manifest.json (cached by content).

    Example: selbench data prepare --source alpaca --input alpaca_data.json --out runs/alpaca --json
    """
    from selbench.data.prepare import prepare as run_prepare

    check_writable(out)
    result = run_prepare(
        source,
        input,
        out,
        skip_invalid=skip_invalid,
        max_per_task=max_per_task,
        field_map=_parse_fields(field),
        max_chars=max_chars,
    )
    duplicates = (result.get("dropped") or {}).get("duplicate", 0)
    if duplicates:
        first = result.get("first_duplicate") or {}
        where = f" (first at line {first['line']}: {first['message']})" if first else ""
        typer.echo(f"note: dropped {duplicates} exact duplicate record(s), same content as an earlier one{where}",
                   err=True)
    keys = ("n", "n_dropped", "dropped", "sha256", "cached", "seconds", "out", "source", "input", "truncated")
    emit({k: result.get(k) for k in keys}, as_json, _human_prepare)


def _human_prepare(result: dict[str, Any]) -> None:
    state = "cached (prepared earlier, nothing recomputed)" if result["cached"] else f"prepared in {result['seconds']:.1f} s"
    typer.echo(f"{result['out']}: {result['n']} examples, {result['n_dropped']} dropped; {state}")
    for reason, count in (result.get("dropped") or {}).items():
        typer.echo(f"  dropped {reason}: {count}")
    if result.get("truncated"):
        typer.echo(f"  input is truncated: {result['truncated']['message']}")
    typer.echo(f"  sha256 {result['sha256']}")


@app.command()
@handle_errors
def stats(
    data: Path = typer.Argument(..., help="A folder written by `selbench data prepare`."),
    as_json: bool = JsonOption,
) -> None:
    """Show a prepared dataset's statistics (examples, sources, tasks, token lengths, drops).

    Example: selbench data stats runs/sharegpt --json
    """
    from selbench.data.prepare import read_manifest

    manifest = read_manifest(data)
    keys = ("n", "n_dropped", "dropped", "sources", "tasks", "tokens", "sha256", "source", "input", "n_multi_turn", "truncated")
    result = {k: manifest.get(k) for k in keys}
    emit(result, as_json, _human_stats)


def _human_stats(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]{result['n']}[/bold] examples from {result['input']} (source {result['source']}), "
                  f"{result['n_dropped']} dropped, {result.get('n_multi_turn') or 0} multi-turn")
    for reason, count in (result.get("dropped") or {}).items():
        console.print(f"  dropped {reason}: {count}")
    tokens = result.get("tokens") or {}
    sample = tokens.get("sample")
    of = f"; a uniform sample of {sample['n']} of {sample['of']} examples" if sample else ""
    table = Table(title=f"token lengths ({tokens.get('tokenizer', '?')}{of})")
    for col in ("", "count", "mean", "median", "p90", "max"):
        table.add_column(col)
    for part in ("instruction_input", "output"):
        row = tokens.get(part) or {}
        table.add_row(part, *(str(row.get(c, "")) for c in ("count", "mean", "median", "p90", "max")))
    console.print(table)
    tasks = result.get("tasks") or {}
    if tasks:
        top = sorted(tasks.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
        console.print(f"{len(tasks)} tasks; largest: " + ", ".join(f"{t} ({n})" for t, n in top))

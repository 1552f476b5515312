"""`selbench score <scorer> ...`: per-example scores of a prepared dataset, cached by content hash.

Thin over `selbench.scoring.base.compute_scores`; one command per registered built-in scorer (length today;
ifd, deita-*, alpagasus, embed are added as their scorer modules land).
"""

from __future__ import annotations

import shutil
import time
import uuid
from pathlib import Path

import typer

from selbench.cli.common import JsonOption, check_writable, emit, handle_errors

app = typer.Typer(
    help=(
        "Score every example of a prepared dataset (computed once per dataset and scorer config).\n\n"
        "Examples:\n\n"
        "  selbench score length --data runs/alpaca --out scores/alpaca-length.parquet --json\n\n"
        "  selbench score length --data runs/alpaca --out scores/alpaca-tokens.parquet "
        "--model smollm2-135m-instruct --json"
    ),
    no_args_is_help=True,
)


def _copy_atomic(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)


@app.command("length")
@handle_errors
def length(
    data: Path = typer.Option(..., "--data", help="Prepared dataset folder."),
    out: Path = typer.Option(..., "--out", help="Scores Parquet to write (id + length)."),
    model: str | None = typer.Option(None, "--model", help="Count tokens of this model's tokenizer."),
    tokenizer: str | None = typer.Option(None, "--tokenizer", help="Count tokens of this tokenizer (folder or spec)."),
    unit: str | None = typer.Option(None, "--unit", help="chars (default) or tokens (default with --model/--tokenizer)."),
    prices: Path | None = typer.Option(None, "--prices", help="Price sheet YAML."),
    as_json: bool = JsonOption,
) -> None:
    """Response length (the `output` field; for multi-turn data, the first assistant turn)."""
    from selbench.cost import load_price_sheet
    from selbench.errors import InputError
    from selbench.scoring.base import compute_scores

    if out.is_dir():  # checked before any work: the scores are one Parquet file
        raise InputError("is a folder; expected the scores' file path (FILE.parquet)", path=out, field="out")
    check_writable(out)
    started = time.perf_counter()
    options: dict[str, str] = {"unit": unit or ("tokens" if (model or tokenizer) else "chars")}
    if tokenizer:
        options["tokenizer"] = tokenizer
    if model:
        options["model"] = model
    result = compute_scores(data, "length", options, prices=load_price_sheet(prices))
    _copy_atomic(result.path, out)
    emit({
        "n": result.n,
        "seconds": time.perf_counter() - started,
        "tokens": int(result.cost.get("tokens", 0)),
        "cost_usd": float(result.call_cost.get("usd", 0.0)),
        "cached": result.cached,
        "config_key": result.key,
        "out": str(out),
    }, as_json)

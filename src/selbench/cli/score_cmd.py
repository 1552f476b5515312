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

from selbench.cli.common import JsonOption, emit, handle_errors

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


@app.command("alpagasus")
@handle_errors
def alpagasus(
    data: Path = typer.Option(..., "--data", help="Prepared dataset folder."),
    out: Path = typer.Option(..., "--out", help="Scores Parquet to write (id + score; NaN where there is no rating)."),
    judge: str = typer.Option(..., "--judge", help="Judge model name at the endpoint (the study: gpt-4o)."),
    judge_base_url: str | None = typer.Option(
        None, "--judge-base-url", help="OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1); default api.openai.com."),
    judge_api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--judge-api-key-env", help="Environment variable holding the judge's API key."),
    preset: str = typer.Option("alpagasus", "--preset", help="alpagasus (the paper's prompt) | study (ChasingRandom's)."),
    judge_workers: int = typer.Option(4, "--judge-workers", help="Concurrent judge requests."),
    judge_timeout: float = typer.Option(120.0, "--judge-timeout", help="Seconds before a judge request is retried."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Output tokens per rating (default: the preset's)."),
    pool_size: int | None = typer.Option(
        None, "--pool-size", help="Rate only this many examples of a seeded shuffle (default: alpagasus all, study 40000)."),
    pool_seed: int = typer.Option(42, "--pool-seed", help="Seed of that shuffle (the study's: 42)."),
    prices: Path | None = typer.Option(None, "--prices", help="Price sheet YAML."),
    as_json: bool = JsonOption,
) -> None:
    """An LLM judge's 0-5 accuracy rating of every example (AlpaGasus); cached per request and per dataset.

    Examples:

      selbench score alpagasus --data runs/alpaca --judge gpt-4o --preset study --out scores/alpagasus.parquet

      selbench score alpagasus --data runs/sharegpt --judge smollm2-135m-instruct \\
          --judge-base-url http://127.0.0.1:8000/v1 --out scores/rated.parquet --json
    """
    # Stopgap: a hand-written command until `selbench score` builds its commands from the registry.
    from selbench.cost import load_price_sheet
    from selbench.errors import InputError
    from selbench.scoring.base import compute_scores

    if out.is_dir():
        raise InputError("is a folder; expected the scores' file path (FILE.parquet)", path=out, field="out")
    started = time.perf_counter()
    options = {"judge": judge, "judge_base_url": judge_base_url, "judge_api_key_env": judge_api_key_env,
               "preset": preset, "judge_workers": judge_workers, "judge_timeout": judge_timeout,
               "max_tokens": max_tokens, "pool_size": pool_size, "pool_seed": pool_seed}
    result = compute_scores(data, "alpagasus", options, prices=load_price_sheet(prices))
    _copy_atomic(result.path, out)
    emit({
        "n": result.n,
        "seconds": time.perf_counter() - started,
        "tokens": int(result.cost.get("api_input_tokens", 0)) + int(result.cost.get("api_output_tokens", 0)),
        "cost_usd": float(result.call_cost.get("usd", 0.0)),
        "unparsed": int(result.stats.get("unparsed", 0)),
        "rejected": int(result.stats.get("rejected", 0)),
        "rated": int(result.stats.get("rated", 0)),
        "requests": 0 if result.cached else int(result.stats.get("judge", {}).get("http_requests", 0)),
        "retries": 0 if result.cached else int(result.stats.get("judge", {}).get("retries", 0)),
        "cached": result.cached,
        "config_key": result.key,
        "out": str(out),
    }, as_json)

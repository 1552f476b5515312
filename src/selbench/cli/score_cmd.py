"""`selbench score <scorer> ...`: per-example scores of a prepared dataset, cached by content hash.

Thin over `selbench.scoring.base.compute_scores`; one command per registered scorer, generated from the
`SCORERS` registry (`selbench.cli.registry_cmds`): each field of the scorer's dataclass is an option, and
`--json` adds the scorer's own summary (`summarize(columns)`, e.g. IFD's `n_skipped`).
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import check_writable, emit
from selbench.cli.registry_cmds import (
    JSON_PARAM,
    SCORE_COMMON,
    common_option,
    config_options,
    make_command,
    summary_line,
)

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


def _scorer_command(name: str) -> None:
    """Mount `selbench score <name>` with the scorer's fields as options."""
    from selbench.scoring.base import SCORERS

    cls = SCORERS.get(name)
    common = [
        common_option("data", ..., "--data", "Prepared dataset folder.", Path),
        common_option("out", ..., "--out", "Scores Parquet to write (id + the scorer's columns).", Path),
        common_option("prices", None, "--prices", "Price sheet YAML.", Path | None),
        JSON_PARAM,
    ]

    def body(options: dict[str, Any], params: dict[str, Any]) -> None:
        _score(name, options["data"], options["out"], options["prices"], options["as_json"], params)

    app.command(name)(make_command(name, summary_line(cls), common, config_options(cls, SCORE_COMMON), body))


def _score(name: str, data: Path, out: Path, prices: Path | None, as_json: bool, params: dict[str, Any]) -> None:
    from selbench.cost import load_price_sheet
    from selbench.errors import InputError
    from selbench.scoring.base import compute_scores

    if out.is_dir():  # checked before any work: the scores are one Parquet file
        raise InputError("is a folder; expected the scores' file path (FILE.parquet)", path=out, field="out")
    check_writable(out)
    started = time.perf_counter()
    # Options left at None are not passed: the scorer's own default applies (and keys the cache).
    options = {k: v for k, v in params.items() if v is not None}
    result = compute_scores(data, name, options, prices=load_price_sheet(prices))
    _copy_atomic(result.path, out)
    emit({
        "n": result.n,
        "seconds": time.perf_counter() - started,
        # model tokens, plus an API judge's prompt and completion tokens (AlpaGasus)
        "tokens": int(result.cost.get("tokens", 0)) + int(result.cost.get("api_input_tokens", 0))
        + int(result.cost.get("api_output_tokens", 0)),
        "cost_usd": float(result.call_cost.get("usd", 0.0)),
        "cached": result.cached,
        "config_key": result.key,
        "out": str(out),
        **result.summary,
    }, as_json)


def _mount_scorers() -> None:
    from selbench.scoring.base import SCORERS

    for name in SCORERS.names():
        try:
            _scorer_command(name)
        except Exception as exc:  # a broken plug-in must not take the whole CLI down
            logging.getLogger(__name__).warning("scorer %r has no command: %s", name, exc)


_mount_scorers()

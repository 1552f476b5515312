"""`selbench cache ls|du|gc`: inspect and prune the step store."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from selbench.cli.common import JsonOption, emit, handle_errors
from selbench.errors import InputError

if TYPE_CHECKING:
    from selbench.store import StepStore

app = typer.Typer(help="Inspect and prune the step store ($SELBENCH_CACHE/steps).", no_args_is_help=True)


def _human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} GiB"


def _check_step(store: StepStore, step: str | None) -> None:
    """`--step NAME` must name a step the store holds (finished, partial or leftover), else exit 2."""
    import difflib

    if step is None:
        return
    names = store.step_names()
    if step not in names:
        near = difflib.get_close_matches(step, names, n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise InputError(
            f"{step!r}: the store at {store.root} holds no such step (it has: {', '.join(names) or 'nothing'}){hint}",
            field="step",
        )


@app.command("ls")
@handle_errors
def ls(
    step: str = typer.Option(None, "--step", help="Only this step."),
    as_json: bool = JsonOption,
) -> None:
    """List finished steps: name, key, age, cost."""
    from rich.console import Console
    from rich.table import Table

    from selbench.store import StepStore

    store = StepStore()
    _check_step(store, step)
    rows = []
    for entry in store.entries():
        if step and entry.step != step:
            continue
        rows.append(
            {
                "step": entry.step,
                "key": entry.key,
                "created": entry.meta.get("created"),
                "seconds": entry.cost.get("wall_seconds"),
                "cost_usd": entry.cost.get("usd"),
                "path": str(entry.path),
            }
        )
    if as_json:
        emit({"root": str(store.root), "entries": rows, "n": len(rows)}, True)
        return
    table = Table(title=f"step store {store.root}")
    for col in ("step", "key", "age", "seconds", "cost_usd"):
        table.add_column(col)
    now = time.time()
    for row in rows:
        age = f"{(now - row['created']) / 3600:.1f} h" if row["created"] else "?"
        secs = f"{row['seconds']:.1f}" if row["seconds"] is not None else ""
        usd = f"{row['cost_usd']:.4f}" if row["cost_usd"] is not None else ""
        table.add_row(row["step"], row["key"][:16], age, secs, usd)
    Console().print(table)


@app.command("du")
@handle_errors
def du(as_json: bool = JsonOption) -> None:
    """Disk used by the whole store: per step, and every other area (converted models, judge responses...)."""
    from selbench.assets.convert import model_cache_root
    from selbench.store import StepStore, tree_bytes

    store = StepStore()
    usage = store.du()
    other = store.du_other()
    models = model_cache_root()
    outside = {}
    # $SELBENCH_MODEL_CACHE may lie outside the store; it is still selbench's cache.
    if models.is_dir() and store.root.resolve() not in (models.resolve(), *models.resolve().parents):
        outside[str(models)] = tree_bytes(models)
    result = {
        "root": str(store.root),
        "bytes": usage,
        "other_bytes": other,
        "outside_bytes": outside,
        "steps_bytes": sum(usage.values()),
        "total_bytes": sum(usage.values()) + sum(other.values()) + sum(outside.values()),
    }
    if as_json:
        emit(result, True)
        return
    for name, size in sorted(usage.items(), key=lambda kv: -kv[1]):
        typer.echo(f"{_human_bytes(size):>12}  step {name}")
    for name, size in sorted(other.items(), key=lambda kv: -kv[1]):
        typer.echo(f"{_human_bytes(size):>12}  {name}/")
    for name, size in outside.items():
        typer.echo(f"{_human_bytes(size):>12}  {name} ($SELBENCH_MODEL_CACHE)")
    typer.echo(f"{_human_bytes(result['total_bytes']):>12}  total ({store.root})")


@app.command("gc")
@handle_errors
def gc(
    older_than_days: float = typer.Option(None, "--older-than-days", help="Also remove entries older than this."),
    step: str = typer.Option(None, "--step", help="Only this step."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed."),
    as_json: bool = JsonOption,
) -> None:
    """Remove leftovers of interrupted runs (and, optionally, old entries)."""
    import math

    from selbench.store import StepStore

    if older_than_days is not None and not (math.isfinite(older_than_days) and older_than_days >= 0):
        raise ValueError(f"--older-than-days must be a finite number of days >= 0, got {older_than_days}")
    store = StepStore()
    _check_step(store, step)
    older = None if older_than_days is None else older_than_days * 86400
    removed = store.gc(older_than_s=older, step=step, dry_run=dry_run)
    result = {"removed": [str(p) for p in removed], "n_removed": len(removed), "dry_run": dry_run}
    if as_json:
        emit(result, True)
        return
    verb = "would remove" if dry_run else "removed"
    for path in removed:
        typer.echo(f"{verb} {path}")
    typer.echo(f"{verb} {len(removed)} folder(s)")

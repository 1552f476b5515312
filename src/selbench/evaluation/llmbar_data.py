"""LLMBar's data: the Natural and Adversarial sets, from a local copy of the reference repo's
`Dataset/LLMBar/` folder, or downloaded once (from the files `hf://princeton-nlp/LLMBar`'s loading script reads).

Zeng et al., 2024 (https://arxiv.org/abs/2310.07641); reference: princeton-nlp/LLMBar `Dataset/LLMBar/`.
Each instance is `input`, `output_1`, `output_2` and the better output's `label` (1 or 2); a set's sha256 is
its file's bytes, so a local and a downloaded copy key the same step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from selbench.errors import InputError
from selbench.hashing import sha256_file

log = logging.getLogger(__name__)

DATA_ENV = "SELBENCH_LLMBAR_DIR"
HUB_DATASET = "princeton-nlp/LLMBar"
# `hf://princeton-nlp/LLMBar` is a loading-script dataset (which datasets>=4 no longer runs); its script
# reads these files, so we read them directly (same bytes as the reference repo's Dataset/LLMBar/).
REMOTE_BASE = "https://raw.githubusercontent.com/princeton-nlp/LLMBar/main/Dataset/LLMBar/"
DOWNLOAD_TIMEOUT_S = 30
# Set name -> folder under the data dir (layout of the reference repo's `Dataset/LLMBar/`).
SET_FOLDERS = {
    "Natural": "Natural",
    "GPTInst": "Adversarial/GPTInst",
    "GPTOut": "Adversarial/GPTOut",
    "Manual": "Adversarial/Manual",
    "Neighbor": "Adversarial/Neighbor",
}
SUBSETS = {"natural": ("Natural",), "adversarial": ("GPTInst", "GPTOut", "Manual", "Neighbor")}


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | str:
    """Where the sets come from: a folder, or an http(s) base URL with the same layout.

    Order: `data_dir`, else $SELBENCH_LLMBAR_DIR, else `llmbar/` in the shared data folder
    (`selbench.assets.shared`: $SELBENCH_SHARED_DATA, else beside the checkout; never relative to the working
    directory), else `REMOTE_BASE` (the files `hf://princeton-nlp/LLMBar` itself loads; that spec names it
    too) unless the hub is switched off (`HF_HUB_OFFLINE`), which is an InputError saying where it looked.
    """
    from selbench.assets.shared import describe_search, find_shared, hub_offline

    for value, field in ((data_dir, "data-dir"), (os.environ.get(DATA_ENV) or None, DATA_ENV)):
        if value is None:
            continue
        if str(value).rstrip("/") == f"hf://{HUB_DATASET}":
            return REMOTE_BASE
        if str(value).startswith(("http://", "https://")):
            return str(value).rstrip("/") + "/"
        path = Path(value)
        if not path.is_dir():
            raise InputError("LLMBar data folder not found", path=str(path), field=field)
        return path
    shared = find_shared("llmbar")
    if shared is not None and shared.is_dir():
        return shared
    if hub_offline():
        raise InputError(f"LLMBar data not found; looked in ${DATA_ENV} (unset) and {describe_search('llmbar')}; the "
                         f"hub is switched off (HF_HUB_OFFLINE), so hf://{HUB_DATASET} is not downloaded: pass "
                         "--data-dir or set $SELBENCH_SHARED_DATA", field="data-dir")
    log.info("no local LLMBar copy (looked in %s); reading hf://%s", describe_search("llmbar"), HUB_DATASET)
    return REMOTE_BASE


def _download_set(url: str) -> Path:
    """`url`'s bytes in the download cache ($SELBENCH_CACHE/downloads/llmbar), fetched once, atomically."""
    import urllib.error
    import urllib.request

    from selbench.store import cache_root

    target = cache_root() / "downloads" / "llmbar" / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.json"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310 - http(s) only
            body = response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        from selbench.assets.shared import describe_search

        raise InputError(f"cannot download LLMBar data ({reason}); no local copy in ${DATA_ENV} or "
                         f"{describe_search('llmbar')}: pass --data-dir or set ${DATA_ENV} to a copy "
                         "of LLMBar's Dataset/LLMBar folder", path=url, field="data-dir") from None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(body)
    os.replace(tmp, target)
    return target


def _read_set(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError("LLMBar set file not found", path=str(path))
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
    except RecursionError:
        raise InputError("not valid JSON here: nested too deeply to parse", path=str(path)) from None
    if not isinstance(rows, list):
        raise InputError("expected a JSON list of instances", path=str(path))
    for number, row in enumerate(rows, start=1):  # records numbered from 1, as every other input
        where = {"path": str(path), "line": number}
        if not isinstance(row, dict):
            raise InputError("expected an object", **where)
        for key in ("input", "output_1", "output_2"):
            if not isinstance(row.get(key), str):
                raise InputError("missing or not a string", field=key, **where)
        if row.get("label") not in (1, 2, "1", "2"):
            raise InputError(f"label {row.get('label')!r} must be 1 or 2", field="label", **where)
    return [{"input": r["input"], "output_1": r["output_1"], "output_2": r["output_2"], "label": int(r["label"])}
            for r in rows]


def load_llmbar(subset: str, data_dir: str | Path | None = None) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """The subset's sets as {set name: instances} and {set name: sha256 of its source}."""
    if subset not in SUBSETS:
        raise InputError(f"subset {subset!r} is not one of {sorted(SUBSETS)}", field="subset")
    root = resolve_data_dir(data_dir)
    sets, hashes = {}, {}
    for name in SUBSETS[subset]:
        if isinstance(root, Path):
            path = root / SET_FOLDERS[name] / "dataset.json"
            sets[name] = _read_set(path)
        else:
            url = f"{root}{SET_FOLDERS[name]}/dataset.json"
            path = _download_set(url)
            try:
                sets[name] = _read_set(path)
            except InputError as exc:  # a bad download: drop it so the next run fetches again
                path.unlink(missing_ok=True)
                raise InputError(f"not an LLMBar set ({exc})", path=url, field="data-dir") from None
        hashes[name] = sha256_file(path)  # same bytes, same hash: local and downloaded copies share caches
    return sets, hashes


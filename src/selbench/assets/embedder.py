"""The packaged sentence embedder (all-MiniLM-L6-v2), loaded offline with sentence-transformers."""

from __future__ import annotations

from typing import Any

EMBEDDER_ASSET = "all-minilm-l6-v2"


def load_embedder(name: str = EMBEDDER_ASSET, device: str = "auto") -> Any:
    """A `SentenceTransformer` loaded from the packaged model folder, never from the hub.

    Args:
        name: an embedder asset name (only `all-minilm-l6-v2` ships) or a local sentence-transformers folder.
        device: torch device for encoding; "auto" is CUDA when available, else CPU.

    Returns:
        The model; `model.encode(texts, normalize_embeddings=True)` gives 384-d unit vectors.
    """
    from pathlib import Path

    from selbench.assets.catalog import asset_path, assets, get_asset
    from selbench.errors import InputError

    if name in assets:
        asset = get_asset(name)
        if asset.kind != "embedder":
            raise InputError(f"asset {name!r} is a {asset.kind}, not a sentence embedder", field="embedder")
        folder = asset_path(name)
    elif Path(name).is_dir():
        folder = Path(name)
    else:
        raise InputError(
            f"unknown embedder {name!r} (packaged: {EMBEDDER_ASSET}; or a local folder)", field="embedder"
        )
    import torch
    from sentence_transformers import SentenceTransformer

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"

    return SentenceTransformer(str(folder), device=device, local_files_only=True)

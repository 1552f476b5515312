"""Offline assets: packaged models and datasets, and one function that resolves any model spec.

The public functions are imported lazily (PEP 562), so `import selbench.assets` never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_model": "selbench.assets.models",
    "load_tokenizer": "selbench.assets.models",
    "LoadOptions": "selbench.assets.models",
    "model_fingerprint": "selbench.assets.fingerprint",
    "asset_path": "selbench.assets.catalog",
    "get_asset": "selbench.assets.catalog",
    "assets": "selbench.assets.catalog",
    "load_embedder": "selbench.assets.embedder",
    "parse_spec": "selbench.assets.spec",
    "is_local_model": "selbench.assets.spec",
    "ensure_converted": "selbench.assets.convert",
    "model_cache_root": "selbench.assets.convert",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'selbench.assets' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)

"""Where shared reference data lives (LLMBar sets, official AlpacaEval annotations, IFEval responses),
found the same way from any working directory.

The folder is `$SELBENCH_SHARED_DATA` when that is set (a configured location replaces the default), else
`shared/data` beside the selbench checkout this package was imported from (the project layout:
`<checkout>/../shared/data`, located from this file, never from the current directory). A lookup that finds nothing says every place it looked
(`describe_search`). Also here: whether the 🤗 hub is switched off (`hub_offline`), which decides whether a
missing dataset may be downloaded at all.
"""

from __future__ import annotations

import os
from pathlib import Path

SHARED_DATA_ENV = "SELBENCH_SHARED_DATA"
OFFLINE_ENVS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
_TRUE = {"1", "on", "yes", "true"}


def shared_data_candidates() -> list[tuple[Path, str]]:
    """(folder, how it was found) for each place shared data may live: the configured one, or the default."""
    configured = os.environ.get(SHARED_DATA_ENV)
    if configured:
        return [(Path(configured).expanduser().absolute(), f"${SHARED_DATA_ENV}")]
    # src/selbench/assets/shared.py -> <checkout>; its sibling `shared/data` in this project's layout
    checkout = Path(__file__).resolve().parents[3]
    return [(checkout.parent / "shared" / "data", f"beside the selbench checkout; set ${SHARED_DATA_ENV} to change")]


def find_shared(relative: str) -> Path | None:
    """The first existing `<candidate>/<relative>`, or None."""
    for root, _ in shared_data_candidates():
        path = root / relative
        if path.exists():
            return path
    return None


def describe_search(relative: str) -> str:
    """Where `find_shared(relative)` looked, for error messages.

    >>> import os
    >>> os.environ.get("SELBENCH_SHARED_DATA") is not None or "beside the selbench checkout" in describe_search("x")
    True
    """
    return "; ".join(f"{root / relative} ({how})" for root, how in shared_data_candidates())


def hub_offline() -> bool:
    """True when the environment switches the 🤗 hub off (`HF_HUB_OFFLINE=1` and its siblings): then no
    code of ours may try the network for a dataset or model."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in OFFLINE_ENVS)

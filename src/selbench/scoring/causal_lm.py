"""Batched forward passes of a causal LM for scorers: next-token logits and pooled last-layer hidden states.

Sequences are sorted by length and cut into batches (little padding), padded on the left with explicit
position ids (`cumsum(mask) - 1`, as 🤗 `generate` computes them), so a padded row computes what it would
compute alone up to float rounding, and the last position of every row is its own last token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

POOLINGS = ("mean", "weighted_mean", "last")


def batches_by_length(lengths: Sequence[int], batch_size: int) -> Iterator[np.ndarray]:
    """Index batches of at most `batch_size`, longest first, so rows of a batch have similar lengths.

    >>> [b.tolist() for b in batches_by_length([3, 9, 1, 9], 2)]
    [[1, 3], [0, 2]]
    """
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any, Any]:
    """(input_ids, attention_mask, position_ids) tensors for token-id rows padded on the left."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row):
            ids[i, width - len(row) :] = torch.tensor(list(row), dtype=torch.long)
            mask[i, width - len(row) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids, mask, positions


def pad_id(tokenizer: Any) -> int:
    """The tokenizer's pad id, else its eos id (the id never reaches a real position: it is masked)."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def next_token_logits(model: Any, rows: Sequence[Sequence[int]], token_ids: Sequence[int], pad: int) -> np.ndarray:
    """`[len(rows), len(token_ids)]` float32 logits of `token_ids` at the position after each row's last token.

    Only the last position goes through the LM head (`logits_to_keep=1`).
    """
    import torch

    ids, mask, positions = left_padded(rows, pad)
    device = _device(model)
    with torch.inference_mode():
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                    logits_to_keep=1)
    return out.logits[:, -1, list(token_ids)].float().cpu().numpy()


def pooled_hidden_states(model: Any, rows: Sequence[Sequence[int]], pooling: str, pad: int) -> np.ndarray:
    """`[len(rows), hidden]` float32 pooled last-layer hidden states.

    Args:
        pooling: "mean" (plain mean over the row's tokens), "weighted_mean" (token at position i of L, counted
            from 1, weighs i / (1 + 2 + ... + L): SGPT's position weighting, as RDS+ uses it) or "last" (the
            row's last token, as DEITA's embedder takes it).
    """
    import torch

    if pooling not in POOLINGS:
        raise ValueError(f"pooling {pooling!r} is not one of {POOLINGS}")
    ids, mask, positions = left_padded(rows, pad)
    device = _device(model)
    get_decoder = getattr(model, "get_decoder", None)
    backbone = get_decoder() if callable(get_decoder) else None
    with torch.inference_mode():
        if backbone is not None:  # skip the LM head: only the hidden states are needed
            hidden = backbone(input_ids=ids.to(device), attention_mask=mask.to(device),
                              position_ids=positions.to(device)).last_hidden_state
        else:
            hidden = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                           output_hidden_states=True).hidden_states[-1]
        hidden = hidden.float()
        if pooling == "last":
            return hidden[:, -1, :].cpu().numpy()
        weights = mask.to(device).float()
        if pooling == "weighted_mean":
            weights = weights * (positions.to(device).float() + 1.0)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)
        return torch.einsum("bl,bld->bd", weights, hidden).cpu().numpy()


def pooled_embeddings(model: Any, tokenizer: Any, texts: Sequence[str], pooling: str, max_length: int,
                      batch_size: int) -> tuple[np.ndarray, int]:
    """(`[len(texts), hidden]` float32 pooled hidden states, tokens processed): each text tokenized with the
    tokenizer's special tokens and cut at `max_length`, as DEITA's and RDS's embedders do."""
    from tqdm.auto import tqdm

    ids = tokenizer(list(texts), truncation=True, max_length=max_length)["input_ids"]
    hidden = int(model.config.get_text_config().hidden_size)
    out = np.zeros((len(ids), hidden), dtype=np.float32)
    pad = pad_id(tokenizer)
    for batch in tqdm(list(batches_by_length([len(x) for x in ids], batch_size)), desc=f"embed ({pooling})",
                      unit="batch", disable=None, leave=False):
        out[batch] = pooled_hidden_states(model, [ids[i] for i in batch], pooling, pad)
    return out, sum(len(x) for x in ids)

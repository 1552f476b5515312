"""Batched forward passes of a causal LM over many token sequences: mean span losses and pooled hidden states.

This is the engine under the IFD and embedding scorers. Sequences are sorted by length (longest first, so a
batch that does not fit fails at once, not after an hour) and cut into batches of at most `batch_tokens`
padded tokens; padding is on the right and masked out of attention, so each row computes what it would
compute alone. Per batch there is one forward pass of the model's backbone; the language-model head is applied
only to the positions whose next token is scored (a response span is usually a fraction of the text, and the
head is ~20 % of a small model's FLOPs), in chunks that bound the `[tokens, vocab]` logits memory. No Python
loop runs over tokens.

That "head on selected positions" path is checked once per model against the model's own `forward`
logits on a short sequence (models that scale or soft-cap their logits inside `forward`, e.g. Gemma 2's
`final_logit_softcapping`, are handled; any other mismatch falls back to the plain forward path).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Padded tokens per batch when the caller does not say. A CPU runs one ~500-token sequence at its matmul peak
# already, so batching gains it nothing and padding costs it (attention with a padding mask also leaves the
# fast causal kernel): small batches of near-equal lengths. A GPU needs large batches to be busy.
CPU_BATCH_TOKENS = 2048
GPU_BATCH_TOKENS = 65536
_MAX_ROWS = 256
# Elements of one chunk of float32 logits: 2**26 floats = 256 MiB.
_LOGIT_CHUNK_ELEMENTS = 2**26


def length_batches(lengths: np.ndarray, batch_tokens: int, max_rows: int = _MAX_ROWS) -> list[np.ndarray]:
    """Batches of indices, longest sequences first, each holding at most `batch_tokens` padded tokens.

    Sorting by length first means each batch's rows have similar lengths, so padding is small.

    >>> [b.tolist() for b in length_batches(np.array([3, 10, 4, 9]), batch_tokens=20)]
    [[1, 3], [2, 0]]
    >>> [b.tolist() for b in length_batches(np.array([30, 2]), batch_tokens=8)]  # one over-long row still runs
    [[0], [1]]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        width = max(int(lengths[order[start]]), 1)  # the first row of a batch is its longest
        rows = max(1, min(max_rows, batch_tokens // width))
        batches.append(order[start : start + rows])
        start += rows
    return batches


def default_batch_tokens(model: Any) -> int:
    return GPU_BATCH_TOKENS if model_device(model).type == "cuda" else CPU_BATCH_TOKENS


def model_device(model: Any) -> Any:
    return next(model.parameters()).device


def _unwrap(model: Any) -> Any:
    """A PEFT model's underlying 🤗 model (its LoRA layers stay active inside it)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _softcap(logits: Any, config: Any) -> Any:
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        import torch

        logits = torch.tanh(logits / cap) * cap
    return logits


class _Parts:
    """The backbone (hidden states after the final norm) and the output head of a causal LM, when the
    two reproduce the model's own logits; otherwise `fast` is False and the full forward is used."""

    def __init__(self, model: Any) -> None:
        self.model = model
        inner = _unwrap(model)
        self.config = inner.config
        self.backbone = getattr(inner, getattr(inner, "base_model_prefix", ""), None)
        self.head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
        self.fast = self.backbone is not None and self.head is not None and self.backbone is not inner
        if self.fast:
            self.fast = self._agrees()

    def _agrees(self) -> bool:
        import torch

        device = model_device(self.model)
        vocab = int(self.head.weight.shape[0])
        ids = (torch.arange(1, 17, device=device) * 7919) % vocab
        ids = ids[None, :]
        with torch.inference_mode():
            full = self.model(input_ids=ids).logits.float()
            hidden = self.backbone(input_ids=ids).last_hidden_state
            mine = _softcap(self.head(hidden), self.config).float()
        scale = float(full.abs().max()) or 1.0
        ok = bool(torch.allclose(mine, full, atol=1e-3 * scale, rtol=1e-3))
        if not ok:
            log.warning("%s: backbone + head does not reproduce forward(); using the full forward (more memory)",
                        type(self.model).__name__)
        return ok

    def hidden(self, ids: Any, mask: Any) -> Any:
        return self.backbone(input_ids=ids, attention_mask=mask).last_hidden_state

    def logits(self, hidden: Any) -> Any:
        return _softcap(self.head(hidden), self.config)


def _parts(model: Any) -> _Parts:
    cached = getattr(model, "_selbench_lm_parts", None)
    if cached is None or cached.model is not model:
        cached = _Parts(model)
        try:
            object.__setattr__(model, "_selbench_lm_parts", cached)
        except (AttributeError, TypeError):  # pragma: no cover - modules normally accept attributes
            pass
    return cached


def sequence_stats(
    model: Any,
    sequences: Sequence[Sequence[int]],
    spans: Sequence[tuple[int, int]] | None = None,
    *,
    pool: str | None = None,
    batch_tokens: int | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per sequence: the mean next-token loss over a span of target positions, and/or a pooled hidden state.

    Args:
        model: a 🤗 causal LM (or PEFT model) in eval mode.
        sequences: token ids per sequence (already truncated; special tokens included as the tokenizer made them).
        spans: `(start, end)` per sequence: the tokens at positions `start..end-1` are scored, each from the
            tokens before it (so `start >= 1`). An empty span gives NaN. None = no losses.
        pool: None, "mean" (mean of the last hidden state over all tokens; padding excluded) or "last" (the
            last token's hidden state). The hidden state is the backbone's output after its final norm.
        batch_tokens: padded tokens per forward pass (default: 8,192 on CPU, 65,536 on GPU).

    Returns:
        (losses float64 `[n]` or None, pooled float32 `[n, hidden]` or None). Empty sequences get NaN.
    """
    import torch

    n = len(sequences)
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=n)
    losses = np.full(n, np.nan) if spans is not None else None
    pooled: np.ndarray | None = None
    if spans is not None:
        starts = np.fromiter((s for s, _ in spans), dtype=np.int64, count=n)
        ends = np.fromiter((e for _, e in spans), dtype=np.int64, count=n)
        assert np.all((starts >= 1) | (ends <= starts)), "a scored token needs at least one token before it"
        assert np.all(ends <= lengths), "a span ends past its sequence"
    parts = _parts(model)
    device = model_device(model)
    if not parts.fast:  # the full [rows, width, vocab] logits are materialised: keep batches small
        vocab = int(model.config.vocab_size)
        batch_tokens = max(1, min(batch_tokens or 10**9, _LOGIT_CHUNK_ELEMENTS // vocab))
    batch_tokens = batch_tokens or default_batch_tokens(model)
    for batch in length_batches(lengths, batch_tokens):
        batch = batch[lengths[batch] > 0]
        if len(batch) == 0:
            continue
        width = int(lengths[batch].max())
        ids_np = np.zeros((len(batch), width), dtype=np.int64)
        for row, i in enumerate(batch):  # one copy per sequence, not per token
            ids_np[row, : lengths[i]] = sequences[i]
        ids = torch.from_numpy(ids_np).to(device)
        positions = torch.arange(width, device=device)[None, :]
        mask = (positions < torch.from_numpy(lengths[batch]).to(device)[:, None]).long()
        # Without padding, no mask: attention then takes its plain causal kernel (faster on CPU).
        attention_mask = None if bool(mask.all()) else mask
        with torch.inference_mode():
            if parts.fast:
                hidden = parts.hidden(ids, attention_mask)
                logits_full = None
            else:
                out = model(input_ids=ids, attention_mask=attention_mask, output_hidden_states=pool is not None)
                logits_full = out.logits
                hidden = out.hidden_states[-1] if pool is not None else None
            if pool is not None:
                vectors = _pool(hidden, mask, pool)
                if pooled is None:
                    pooled = np.full((n, vectors.shape[1]), np.nan, dtype=np.float32)
                pooled[batch] = vectors.float().cpu().numpy()
            if spans is not None:
                b_starts = torch.from_numpy(starts[batch]).to(device)[:, None]
                b_ends = torch.from_numpy(ends[batch]).to(device)[:, None]
                # Position p predicts token p + 1: the scored positions are start-1 .. end-2.
                scored = (positions >= b_starts - 1) & (positions < b_ends - 1)
                targets = torch.roll(ids, -1, dims=1)[scored]
                rows = torch.arange(len(batch), device=device)[:, None].expand(-1, width)[scored]
                if logits_full is not None:
                    nll = _nll(logits_full[scored], targets)
                else:
                    nll = _chunked_nll(parts, hidden[scored], targets)
                sums = torch.zeros(len(batch), dtype=torch.float64, device=device).index_add_(0, rows, nll.double())
                counts = scored.sum(dim=1)
                means = (sums / counts.clamp(min=1)).cpu().numpy()
                means[counts.cpu().numpy() == 0] = np.nan
                losses[batch] = means
    return losses, pooled


def _pool(hidden: Any, mask: Any, how: str) -> Any:
    import torch

    if how == "mean":
        weights = mask.to(hidden.dtype)[:, :, None]
        return (hidden.float() * weights.float()).sum(dim=1) / weights.float().sum(dim=1)
    if how == "last":
        last = mask.sum(dim=1) - 1
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last].float()
    raise ValueError(f"pool must be 'mean' or 'last', got {how!r}")


def _nll(logits: Any, targets: Any) -> Any:
    import torch

    logprobs = torch.log_softmax(logits.float(), dim=-1)
    return -logprobs.gather(1, targets[:, None])[:, 0]


def _chunked_nll(parts: _Parts, hidden: Any, targets: Any) -> Any:
    import torch

    vocab = int(parts.head.weight.shape[0])
    step = max(64, _LOGIT_CHUNK_ELEMENTS // vocab)
    out = [_nll(parts.logits(hidden[i : i + step]), targets[i : i + step]) for i in range(0, len(targets), step)]
    return torch.cat(out) if out else torch.zeros(0, device=hidden.device)

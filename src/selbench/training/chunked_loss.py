"""Causal-LM cross-entropy without the full-vocabulary logits: the LM head and the loss, fused and chunked.

A causal LM's training loss computes `logits = hidden @ W.T` for every position of the batch, in fp32,
then a log-softmax over the vocabulary and its gradient: three or four tensors of batch x sequence x
vocabulary floats (SmolLM2-135M at batch 8 x 256: 400 MB each). Here the same loss is computed for a
few hundred positions at a time (`chunk_rows`, sized so one chunk's logits take about `CHUNK_BYTES`), and
only at the positions that have a label; each chunk's gradient with respect to the hidden states (and
to `W` when it is trained) is computed right away, so no logits outlive their chunk. Peak memory is then
one chunk's logits, whatever the batch, sequence length or vocabulary.

This is the "fused linear cross-entropy" of Liger-Kernel (Hsu et al., 2024, arXiv:2410.10989;
linkedin/Liger-Kernel `ops/fused_linear_cross_entropy.py`) and of Apple's Cut Cross-Entropy (Wijmans et
al., 2024, arXiv:2411.09009), written here in plain PyTorch for the CPU; the gradient is the textbook
`softmax(z) - onehot(target)`. Deviation: none in the math; sums run in a different order than one big
`cross_entropy`, so results agree to float rounding (tests: 1e-5), not bit for bit; a batch without any
labelled position has loss 0 (transformers: NaN from 0 / 0).

The loss follows transformers' `ForCausalLMLoss` exactly: position t predicts label t+1, labels of -100
are ignored, the sum is divided by `num_items_in_batch` when given (gradient accumulation over the whole
accumulated batch), else averaged over the labelled positions. Gemma-style final logit soft-capping
(`cap * tanh(z / cap)`) is applied when the model config asks for it.
"""

from __future__ import annotations

import functools
from typing import Any

IGNORE_INDEX = -100
CHUNK_BYTES = 64 * 1024 * 1024  # one chunk's fp32 logits; the softmax is computed in place in the same buffer
# Causal LMs whose forward is `lm_head(decoder(...).last_hidden_state)` (+ optional final soft-capping) and
# whose loss is `ForCausalLMLoss`: others keep the model's own loss over full logits.
SUPPORTED_MODEL_TYPES = frozenset(
    {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "phi3", "olmo2", "smollm3"}
)


def chunk_rows(vocab_size: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Positions per chunk so that one chunk's fp32 logits take about `chunk_bytes`.

    >>> chunk_rows(49152)
    341
    >>> chunk_rows(10**9)
    1
    """
    return max(1, chunk_bytes // (4 * vocab_size))


def shifted_targets(labels: Any) -> tuple[Any, Any]:
    """(mask of positions that predict a label, their targets): position t predicts labels[t + 1].

    >>> import torch
    >>> mask, targets = shifted_targets(torch.tensor([[-100, 5, 6, -100]]))
    >>> mask.tolist(), targets.tolist()
    ([[True, True, False, False]], [5, 6])
    """
    import torch.nn.functional as F

    shifted = F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:]
    mask = shifted != IGNORE_INDEX
    return mask, shifted[mask]


def linear_cross_entropy(
    hidden: Any,
    weight: Any,
    targets: Any,
    *,
    bias: Any = None,
    softcap: float | None = None,
    divisor: Any = None,
    chunk: int | None = None,
) -> Any:
    """Sum over rows of `cross_entropy(hidden @ weight.T + bias, targets)`, divided by `divisor` (default: the
    number of rows), without materializing more than `chunk` rows of logits.

    Args:
        hidden: [N, H] hidden states of the positions that have a target.
        weight: [V, H] the LM head (output embedding) weight.
        targets: [N] token ids.
        bias: [V] the LM head's bias, if any.
        softcap: final logit soft-capping (`cap * tanh(z / cap)`), if the model uses it.
        divisor: what the summed loss is divided by (a number or a 0-d tensor).
        chunk: rows per chunk (default: `chunk_rows(V)`).

    Returns:
        A 0-d fp32 tensor with gradients for `hidden`, `weight` and `bias` as they require.
    """
    import torch

    divisor = hidden.shape[0] if divisor is None else divisor
    divisor = torch.as_tensor(divisor, dtype=torch.float32, device=hidden.device).clamp(min=1)
    return _fused_class().apply(hidden, weight, bias, targets, softcap, chunk or chunk_rows(weight.shape[0]), divisor)


@functools.cache
def _fused_class() -> Any:
    """The autograd Function, built on first use so that importing this module does not import torch."""
    import torch

    class LinearCrossEntropy(torch.autograd.Function):
        """Forward computes the loss and, chunk by chunk, the gradients; backward only scales them."""

        @staticmethod
        def forward(ctx, hidden, weight, bias, targets, softcap, chunk, divisor):  # noqa: ANN001, ANN205
            need_h, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
            need_b = bias is not None and ctx.needs_input_grad[2]
            grad_h = torch.zeros_like(hidden) if need_h else None
            grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None
            grad_b = torch.zeros_like(bias, dtype=torch.float32) if need_b else None
            total = torch.zeros((), dtype=torch.float32, device=hidden.device)
            for start in range(0, hidden.shape[0], chunk):
                h = hidden[start:start + chunk]
                tgt = targets[start:start + chunk]
                z = torch.nn.functional.linear(h, weight, bias).float()
                capped = None
                if softcap:
                    capped = torch.tanh(z / softcap)
                    z = capped * softcap
                lse = torch.logsumexp(z, dim=-1)
                total += (lse - z.gather(1, tgt[:, None]).squeeze(1)).sum()
                if not (need_h or need_w or need_b):
                    continue
                # d loss / d z = softmax(z) - onehot(target), computed in z's buffer
                g = z.sub_(lse[:, None]).exp_()
                g[torch.arange(g.shape[0], device=g.device), tgt] -= 1.0
                if capped is not None:
                    g.mul_(1.0 - capped * capped)
                if need_h:
                    grad_h[start:start + chunk] = (g.to(weight.dtype) @ weight).to(hidden.dtype)
                if need_w:
                    grad_w.addmm_(g.t(), h.float())
                if need_b:
                    grad_b += g.sum(0)
            ctx.save_for_backward(grad_h, grad_w, grad_b, divisor)
            ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
            return total / divisor

        @staticmethod
        def backward(ctx, grad_out):  # noqa: ANN001, ANN205
            grad_h, grad_w, grad_b, divisor = ctx.saved_tensors
            scale = grad_out / divisor
            out_h = None if grad_h is None else grad_h * scale.to(grad_h.dtype)
            out_w = None if grad_w is None else (grad_w * scale).to(ctx.dtypes[0])
            out_b = None if grad_b is None else (grad_b * scale).to(ctx.dtypes[1])
            return out_h, out_w, out_b, None, None, None, None

    return LinearCrossEntropy


def causal_lm_parts(model: Any) -> tuple[Any, Any, float | None] | None:
    """(decoder, lm_head, softcap) of a supported 🤗 causal LM (peft-wrapped or not), or None.

    The decoder returns `last_hidden_state` (after the final norm); the model's own forward would apply
    `lm_head` to it, then the optional soft-capping.
    """
    import torch

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    if getattr(config, "model_type", None) not in SUPPORTED_MODEL_TYPES:
        return None
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    if not isinstance(head, torch.nn.Linear) or decoder is None:
        return None
    return decoder, head, getattr(config, "final_logit_softcapping", None)


def causal_lm_loss(parts: tuple[Any, Any, float | None], inputs: dict[str, Any],
                   num_items_in_batch: Any = None) -> Any:
    """The model's causal-LM loss on `inputs` (with `labels`), computed without full logits.

    `num_items_in_batch` as transformers' Trainer passes it: the labelled tokens of the whole accumulated
    batch (the sum is divided by it); None averages over this batch's labelled tokens.
    """
    decoder, head, softcap = parts
    model_inputs = {k: v for k, v in inputs.items() if k not in ("labels", "use_cache")}
    hidden = decoder(**model_inputs, use_cache=False).last_hidden_state
    mask, targets = shifted_targets(inputs["labels"])
    divisor = num_items_in_batch if num_items_in_batch is not None else mask.sum()
    return linear_cross_entropy(hidden[mask], head.weight, targets, bias=head.bias, softcap=softcap,
                                divisor=divisor)

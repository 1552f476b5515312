"""The chunked, fused LM-head loss equals the model's own loss (issue 10, item 9) and never holds the
full-vocabulary logits."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from selbench.assets.tiny import build_tiny_model
from selbench.training.chunked_loss import (
    causal_lm_loss,
    causal_lm_parts,
    linear_cross_entropy,
    shifted_targets,
)


def _batch(vocab: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three rows of 40 tokens: prompt positions masked, one row right-padded."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (3, 40), generator=generator)
    labels = ids.clone()
    labels[:, :12] = -100
    attention = torch.ones_like(ids)
    attention[2, 30:] = 0
    labels[2, 30:] = -100
    return {"input_ids": ids, "attention_mask": attention, "labels": labels}


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("num_items", [None, 97])
def test_loss_and_gradients_equal_the_models_own(num_items):
    model, tok = build_tiny_model()  # tied embeddings: the LM head's weight is trained too
    model.train()
    batch = _batch(len(tok))
    extra = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    reference = model(**batch, use_cache=False, **extra).loss
    reference.backward()
    expected = _grads(model)
    model.zero_grad()
    ours = causal_lm_loss(causal_lm_parts(model), {**batch, "use_cache": False}, extra.get("num_items_in_batch"))
    ours.backward()
    got = _grads(model)
    assert ours.item() == pytest.approx(reference.item(), abs=1e-5)
    assert got.keys() == expected.keys() and "model.embed_tokens.weight" in got
    for name, grad in expected.items():
        torch.testing.assert_close(got[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_softcap_and_bias_follow_the_textbook_formula():
    generator = torch.Generator().manual_seed(1)
    hidden = torch.randn(50, 16, generator=generator, requires_grad=True)
    weight = torch.randn(300, 16, generator=generator, requires_grad=True)
    bias = torch.randn(300, generator=generator, requires_grad=True)
    targets = torch.randint(0, 300, (50,), generator=generator)
    ours = linear_cross_entropy(hidden, weight, targets, bias=bias, softcap=5.0, divisor=41, chunk=7)
    ours.backward()
    got = [t.grad.clone() for t in (hidden, weight, bias)]
    for t in (hidden, weight, bias):
        t.grad = None
    logits = 5.0 * torch.tanh(F.linear(hidden, weight, bias) / 5.0)
    reference = F.cross_entropy(logits, targets, reduction="sum") / 41
    reference.backward()
    assert ours.item() == pytest.approx(reference.item(), abs=1e-5)
    for mine, theirs in zip(got, (hidden.grad, weight.grad, bias.grad), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-6)


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN206
        out = func(*args, **(kwargs or {}))
        for item in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(item, torch.Tensor):
                self.largest = max(self.largest, item.numel())
        return out


def test_no_tensor_holds_more_than_one_chunk_of_logits():
    model, tok = build_tiny_model()
    model.train()
    batch = _batch(len(tok))
    n_labelled = int((batch["labels"][:, 1:] != -100).sum())
    vocab = len(tok)
    with _LargestTensor() as full:
        model(**batch, use_cache=False).loss.backward()
    model.zero_grad()
    chunk = 8
    parts = causal_lm_parts(model)
    with _LargestTensor() as chunked:  # causal_lm_loss's steps, with a small chunk to make the bound tight
        hidden = parts[0](**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).last_hidden_state
        mask, targets = shifted_targets(batch["labels"])
        linear_cross_entropy(hidden[mask], parts[1].weight, targets, chunk=chunk).backward()
    assert full.largest >= batch["input_ids"].numel() * vocab  # the model materializes every position's logits
    assert chunked.largest <= max(chunk * vocab, parts[1].weight.numel())  # one chunk, or the head's own size
    assert chunked.largest < n_labelled * vocab


def test_training_logs_the_same_losses_with_and_without_chunks(tiny_model_dir, tmp_path, monkeypatch):
    """Through the Trainer (LoRA, 3 steps): every logged loss agrees to 1e-5 with the full-logits loss."""
    from selbench.data.schema import Example, write_examples
    from selbench.store import StepStore
    from selbench.training import trl_adapter
    from selbench.training.presets import from_preset
    from selbench.training.train import train

    write_examples([Example(instruction=f"Name colour {i}.", output="red green blue " * (1 + i % 3))
                    for i in range(6)], tmp_path / "data" / "data.parquet")
    config = from_preset("demo", lora=True, max_steps=3, effective_batch_size=2, per_device_batch_size=2,
                         max_length=64)
    losses = {}
    for chunked in (False, True):
        monkeypatch.setattr(trl_adapter, "CHUNKED_LOSS", chunked)
        result = train(str(tiny_model_dir), tmp_path / "data", None, config, None,
                       store=StepStore(tmp_path / f"store-{chunked}"))
        log = (tmp_path / f"store-{chunked}").glob("steps/train/*/train_log.jsonl")
        losses[chunked] = [json.loads(line)["loss"] for line in next(log).read_text().splitlines()]
        assert result["global_step"] == 3
    assert losses[True] == pytest.approx(losses[False], abs=1e-5)

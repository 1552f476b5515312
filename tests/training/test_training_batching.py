"""Padding arithmetic, and packed rows that do not let examples attend to each other."""

from __future__ import annotations

import torch

from selbench.training.batching import fixed_batches, packed_position_ids, pad_fraction, padding_stats


def test_padding_stats_by_hand():
    lengths = [5, 1, 5, 1]
    assert padding_stats(lengths, fixed_batches(range(4), 2)) == (12, 20)
    assert pad_fraction(lengths, [[0, 2], [1, 3]]) == 0.0
    assert abs(pad_fraction(lengths, fixed_batches(range(4), 2)) - 0.4) < 1e-12


def test_packed_position_ids_restart_per_example():
    assert packed_position_ids([2, 3, 1]) == [0, 1, 0, 1, 2, 0]


def test_packed_sequences_give_the_same_logits_as_each_example_alone(tiny_model):
    """TRL's padding-free collator (what `packing=True` uses) keeps attention inside each example."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    model, tok = tiny_model
    texts = ["The cat sat on the mat.", "A quick brown fox jumps", "Hello"]
    examples = [{"input_ids": tok(t)["input_ids"]} for t in texts]
    collator = DataCollatorForLanguageModeling(pad_token_id=tok.pad_token_id, padding_free=True)
    batch = collator(examples)
    assert batch["input_ids"].shape[0] == 1 and "attention_mask" not in batch
    assert batch["position_ids"][0].tolist() == packed_position_ids([len(e["input_ids"]) for e in examples])
    with torch.no_grad():
        # use_cache=False as SFTTrainer.compute_loss passes it: transformers only derives the per-example
        # (block-diagonal) mask from restarted position ids when no KV cache is being built.
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits[0]
        alone = torch.cat([model(input_ids=torch.tensor([e["input_ids"]])).logits[0] for e in examples])
        # Control: the same row without restarted positions lets later examples see earlier ones.
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits[0]
    assert torch.allclose(packed, alone, atol=1e-5)
    assert not torch.allclose(leaky, alone, atol=1e-3)
    # The first token of each later example is not trained on (it would be predicted across the boundary).
    starts = (batch["position_ids"][0] == 0).nonzero().flatten()
    assert (batch["labels"][0, starts] == -100).all()

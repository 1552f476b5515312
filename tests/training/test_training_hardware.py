"""Hardware resolution on this CPU, and the shipped multi-GPU configs."""

from __future__ import annotations

import json

import pytest
import yaml

from selbench.training.configs import config_path, shipped_configs
from selbench.training.presets import from_preset
from selbench.training.trl_adapter import hardware, resolve_deepspeed, sft_args


def test_cpu_runs_fp32_with_checkpointing_and_derives_accumulation(monkeypatch, tmp_path):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    hw = hardware(from_preset("set1", per_device_batch_size=4))
    # checkpointing is on by default on CPU too (issue 10, item 9: activations dominated peak memory)
    assert hw["device"] == "cpu" and hw["precision"] == "fp32" and hw["gradient_checkpointing"] is True
    assert hardware(from_preset("set1", gradient_checkpointing=False))["gradient_checkpointing"] is False
    assert (hw["per_device_batch_size"], hw["gradient_accumulation_steps"]) == (4, 32)
    monkeypatch.setenv("WORLD_SIZE", "8")
    hw8 = hardware(from_preset("set1"))
    assert (hw8["per_device_batch_size"], hw8["gradient_accumulation_steps"], hw8["world_size"]) == (2, 8, 8)
    monkeypatch.delenv("WORLD_SIZE")  # accelerate would try to join an 8-process group
    args = sft_args(from_preset("set2", per_device_batch_size=4), tmp_path, hw, packing_strategy=None)
    assert args.bf16 is False and args.gradient_accumulation_steps == 32 and args.lr_scheduler_type == "cosine"
    assert args.learning_rate == 2e-5 and args.num_train_epochs == 3 and args.weight_decay == 0.0


@pytest.mark.parametrize(
    "name, kind, stage",
    [("accelerate_zero2.yaml", "DEEPSPEED", 2), ("accelerate_zero3.yaml", "DEEPSPEED", 3), ("accelerate_fsdp.yaml", "FSDP", None)],
)
def test_accelerate_configs_parse(name, kind, stage):
    cfg = yaml.safe_load(config_path(name).read_text())
    assert cfg["distributed_type"] == kind and cfg["mixed_precision"] == "bf16"
    if stage is not None:
        assert cfg["deepspeed_config"]["zero_stage"] == stage


def test_deepspeed_jsons_parse_and_resolve_by_name():
    for name, stage in (("ds_zero2.json", 2), ("ds_zero3.json", 3)):
        assert json.loads(config_path(name).read_text())["zero_optimization"]["stage"] == stage
        assert resolve_deepspeed(name) == str(config_path(name))
    assert len(shipped_configs()) == 5
    with pytest.raises(ValueError, match="no shipped training config 'ds_zero4.json'"):
        resolve_deepspeed("ds_zero4.json")


def test_trainer_groups_batches_by_our_length_column(tiny_model, tmp_path, monkeypatch):
    from datasets import Dataset
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from selbench.training.trl_adapter import build_trainer

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    model, tok = tiny_model
    lengths = [3, 9, 4, 8, 2, 7, 5, 6]
    ds = Dataset.from_dict({"input_ids": [[5] * n for n in lengths], "labels": [[5] * n for n in lengths], "length": lengths})
    config = from_preset("demo", effective_batch_size=2, per_device_batch_size=2)
    hw = hardware(config)
    trainer = build_trainer(model, tok, ds, config, tmp_path, hw, packing_strategy=None)
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler) and list(sampler.lengths) == lengths
    ungrouped = build_trainer(model, tok, ds, config.replace(group_by_length=False), tmp_path, hw, packing_strategy=None)
    assert not isinstance(ungrouped._get_train_sampler(), LengthGroupedSampler)

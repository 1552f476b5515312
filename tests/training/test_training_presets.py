"""Presets match the study's Table 3; overrides are typed and checked; the batch plan is exact."""

from __future__ import annotations

import pytest

from selbench.training.presets import TrainConfig, batch_plan, from_preset, parse_overrides


@pytest.mark.parametrize(
    "name, lr, scheduler, max_length, epochs, warmup, lora",
    [
        ("set1", 2e-5, "linear", 512, 3, 0.03, False),
        ("set2", 2e-5, "cosine", 512, 3, 0.03, False),
        ("set3", 1e-5, "linear", 512, 3, 0.03, False),
        ("set4-lora", 2e-5, "linear", 1024, 5, 0.3, True),
    ],
)
def test_presets_match_table_3(name, lr, scheduler, max_length, epochs, warmup, lora):
    c = from_preset(name)
    assert (c.learning_rate, c.lr_scheduler, c.max_length, c.epochs, c.warmup_ratio, c.lora) == (
        lr, scheduler, max_length, epochs, warmup, lora,
    )
    assert c.effective_batch_size == 128
    assert c.optimizer == "adamw_torch" and c.weight_decay == 0.0  # AdamW without decay = Adam


def test_demo_preset_is_cpu_sized():
    c = from_preset("demo")
    assert c.max_length == 256 and c.effective_batch_size == 8 and c.epochs == 2 and c.warmup_ratio == 0.0


def test_overrides_replace_single_fields_and_unknown_ones_fail_clearly():
    c = from_preset("set4-lora", max_length=256, lora_r=8)
    assert (c.max_length, c.lora_r, c.learning_rate) == (256, 8, 2e-5)
    with pytest.raises(ValueError, match="no field 'lora_rank'; did you mean 'lora_r'"):
        from_preset("set1", lora_rank=8)
    with pytest.raises(ValueError, match="field 'lr_scheduler': got 'cosin'.*allowed"):
        from_preset("set1", lr_scheduler="cosin")
    with pytest.raises(ValueError, match="unknown preset 'set5'"):
        from_preset("set5")
    with pytest.raises(ValueError, match="warmup_ratio"):
        TrainConfig(warmup_ratio=1.5)


def test_parse_overrides_types_values():
    got = parse_overrides(["lora_r=8", "learning_rate=1e-4", "packing=true", "lora_target_modules=q_proj,v_proj"])
    assert got == {"lora_r": 8, "learning_rate": 1e-4, "packing": True, "lora_target_modules": ("q_proj", "v_proj")}
    with pytest.raises(ValueError, match="lora_r=eight: not a valid int"):
        parse_overrides(["lora_r=eight"])
    with pytest.raises(ValueError, match="expected key=value"):
        parse_overrides(["lora_r"])


@pytest.mark.parametrize(
    "effective, per_device, world, plan",
    [(128, 2, 8, (2, 8)), (128, 8, 1, (8, 16)), (128, 4, 2, (4, 16)), (8, 16, 1, (8, 1)), (8, 8, 1, (8, 1))],
)
def test_batch_plan_gives_the_effective_batch(effective, per_device, world, plan):
    got = batch_plan(effective, per_device, world)
    assert got == plan
    assert got[0] * got[1] * world == effective


def test_batch_plan_refuses_an_uneven_split():
    with pytest.raises(ValueError, match="effective_batch_size.*128.*not a multiple"):
        batch_plan(128, 3, 1)


@pytest.mark.parametrize("field, value", [
    ("learning_rate", float("inf")), ("learning_rate", float("nan")), ("epochs", float("inf")),
    ("warmup_ratio", float("nan")), ("max_grad_norm", float("inf")), ("weight_decay", float("inf")),
    ("lora_dropout", float("nan")), ("max_grad_norm", -1.0), ("seed", -5), ("seed", 2**32),
    ("lora_target_modules", ("q_proj", " ")), ("deepspeed", "/nonexistent/ds.json"), ("deepspeed", "ds_zero9.json"),
])
def test_bad_values_are_input_errors_naming_the_field(field, value):
    """Review finding 6: `--set learning_rate=1e400` (inf) trained to NaN weights, `epochs=inf` crashed, a
    missing DeepSpeed JSON failed only after the model loaded, and seed errors named no field."""
    from selbench.errors import InputError

    with pytest.raises(InputError) as exc:
        from_preset("demo", **{field: value})
    assert exc.value.field == field and exc.value.one_line().startswith(f"field '{field}': ")
    assert isinstance(exc.value, ValueError)  # callers that caught the old ValueError still do


def test_parsed_overflowing_floats_are_rejected():
    with pytest.raises(ValueError, match="field 'learning_rate': got inf, allowed: a finite number"):
        from_preset("demo", **parse_overrides(["learning_rate=1e400"]))


def test_shipped_deepspeed_name_and_existing_path_are_accepted(tmp_path):
    ds = tmp_path / "ds.json"
    ds.write_text("{}")
    assert from_preset("demo", deepspeed="ds_zero3.json").deepspeed == "ds_zero3.json"
    assert from_preset("demo", deepspeed=str(ds)).deepspeed == str(ds)


def test_gpu_only_optimizer_is_refused_on_a_cpu_machine_before_training():
    from selbench.errors import InputError
    from selbench.training.presets import check_runnable

    config = from_preset("demo", optimizer="paged_adamw_32bit")  # buildable (and keyable) anywhere
    with pytest.raises(InputError) as exc:
        check_runnable(config, cuda=False)
    assert exc.value.field == "optimizer" and "needs a CUDA GPU" in exc.value.message
    check_runnable(from_preset("demo"), cuda=False)  # the default optimizer runs anywhere

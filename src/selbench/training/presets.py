"""`TrainConfig`: every knob of a fine-tuning run, and the study's presets by name.

    config = from_preset("set4-lora", max_length=512)   # Table 3 row, one field overridden

The presets are Table 3 of Diddee & Ippolito ("Chasing Random"); see `PRESETS` below. Where the paper is
silent we follow its released code (ippolito-cmu/ChasingRandom `src/scripts/train.sh`): weight decay 0, no
gradient clipping change (transformers' default 1.0), per-device batch 2 x accumulation 8 x 8 GPUs = 128.
"Adam" is `adamw_torch` with weight decay 0, which is Adam; the study ran `paged_adamw_32bit` (bitsandbytes,
GPU only), the same update rule with paged optimizer state.

The presets carry the paper's numbers; the objective is ours by default: the model's chat template (or the
Alpaca prompt) with the prompt masked, unpacked rows grouped by length. The released `train.py` trained
packed 512-token rows of its own prompt with loss on every token and no length grouping; to reproduce that,
add `--template study --set packing=true --set group_by_length=false` (see `training.study`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from selbench.errors import InputError

SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
OPTIMIZERS = ("adamw_torch", "adamw_torch_fused", "paged_adamw_32bit", "sgd", "adafactor")
TEMPLATE_NAMES = ("auto", "chat", "alpaca", "study")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
# Optimizers implemented by bitsandbytes (transformers `OptimizerNames`): CUDA only.
CUDA_ONLY_OPTIMIZERS = ("paged_adamw_32bit",)


class ConfigError(InputError, ValueError):
    """A bad TrainConfig value: exit 2 with `field 'x'` like any InputError, and still a ValueError for
    callers (study YAML loading, tests) that catch those."""



# The study's Table 3 (Diddee & Ippolito), as TrainConfig field overrides; `demo` is ours, for CPU scale.
# Fields not named here keep TrainConfig's defaults (see TrainConfig below for what each default is and why).
PRESETS: dict[str, dict[str, Any]] = {
    "set1": {
        "learning_rate": 2e-5,
        "effective_batch_size": 128,
        "max_length": 512,
        "epochs": 3.0,
        "warmup_ratio": 0.03,
        "lr_scheduler": "linear",
        "lora": False,
    },
    "set2": {
        "learning_rate": 2e-5,
        "effective_batch_size": 128,
        "max_length": 512,
        "epochs": 3.0,
        "warmup_ratio": 0.03,
        "lr_scheduler": "cosine",
        "lora": False,
    },
    "set3": {
        "learning_rate": 1e-5,
        "effective_batch_size": 128,
        "max_length": 512,
        "epochs": 3.0,
        "warmup_ratio": 0.03,
        "lr_scheduler": "linear",
        "lora": False,
    },
    "set4-lora": {
        "learning_rate": 2e-5,
        "effective_batch_size": 128,
        "max_length": 1024,
        "epochs": 5.0,
        "warmup_ratio": 0.3,
        "lr_scheduler": "linear",
        "lora": True,
    },
    # demo: a high LoRA learning rate (1e-3; measured on SmolLM2 + 64 ShareGPT examples, 2e-4 moved the
    # epoch-mean loss by under 2% in 12 steps); 2 epochs so that a 64-example run sees each example twice and its
    # loss visibly falls (one epoch of new batches is too noisy to show it); no warmup, which would spend
    # one of its ~16 steps at learning rate 0.
    "demo": {
        "learning_rate": 1e-3,
        "effective_batch_size": 8,
        "per_device_batch_size": 8,
        "max_length": 256,
        "epochs": 2.0,
        "warmup_ratio": 0.0,
        "lr_scheduler": "linear",
        "lora": False,
    },
}


@dataclass(frozen=True)
class TrainConfig:
    """One fine-tuning run's settings (hardware-independent except where marked "auto").

    Optimisation:
        learning_rate: peak learning rate.
        optimizer: transformers optimizer name (default `adamw_torch`; with weight_decay 0 it is Adam).
        weight_decay: 0.0 as in the study's script.
        lr_scheduler: `linear`, `cosine`, ... (transformers scheduler names).
        warmup_ratio: fraction of steps spent warming up.
        epochs: passes over the selection (fractional allowed).
        max_steps: stop after this many optimizer steps (-1: run the epochs).
        max_grad_norm: gradient clipping (transformers default 1.0).

    Batching:
        effective_batch_size: examples per optimizer step, over all devices and accumulation steps.
        per_device_batch_size: examples per forward pass per device; gradient accumulation is derived
            (`batch_plan`). The study used 2 per device on 8 GPUs.
        max_length: tokens per example; longer ones keep their start (see `base.encode_segments`).
        group_by_length: draw batches of similar length (less padding); TRL/transformers sampler.
        packing: pack examples into `max_length` rows without attention across examples (TRL `bfd`).

    Loss and format:
        template: `auto` (the model's chat template, else Alpaca), `chat`, `alpaca`, `study`.
        loss_on_prompt: train on prompt tokens too; None = the template's default (True only for `study`).

    LoRA (Hu et al., 2021, via peft; defaults are ours, the paper does not give them):
        lora: train a LoRA adapter instead of all weights.
        lora_r / lora_alpha / lora_dropout: rank 16, alpha 32, dropout 0.05.
        lora_target_modules: attention projections q,k,v,o (Llama/SmolLM2 names).

    Hardware (auto = decided from the device at hand):
        precision: `auto` (bf16 on a bf16-capable GPU, fp32 on CPU), `fp32`, `bf16`, `fp16`.
        gradient_checkpointing: None = on (GPU and CPU). Activations are recomputed layer by layer in the
            backward pass: the same loss and gradients, ~33% more time per step (measured on CPU), and on
            CPU LoRA on SmolLM2-135M (batch 8 x 256) peaks at 1.6 GiB instead of 4-5 GiB
            (bench/bench_training_memory.py).
        deepspeed: path to a DeepSpeed JSON (e.g. `configs/ds_zero2.json`) or None.

    Run:
        seed: training seed (data order, init of LoRA weights).
        logging_steps / save_steps: log every k steps; checkpoint every k steps (resume point).
    """

    learning_rate: float = 2e-5
    optimizer: str = "adamw_torch"
    weight_decay: float = 0.0
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.03
    epochs: float = 3.0
    max_steps: int = -1
    max_grad_norm: float = 1.0
    effective_batch_size: int = 128
    per_device_batch_size: int = 2
    max_length: int = 512
    group_by_length: bool = True
    packing: bool = False
    template: str = "auto"
    loss_on_prompt: bool | None = None
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: tuple[str, ...] = field(default=DEFAULT_LORA_TARGETS)
    precision: str = "auto"
    gradient_checkpointing: bool | None = None
    deepspeed: str | None = None
    seed: int = 42
    logging_steps: int = 1
    save_steps: int = 50

    def __post_init__(self) -> None:
        if isinstance(self.lora_target_modules, str):
            object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules.split(",")))
        elif isinstance(self.lora_target_modules, list):
            object.__setattr__(self, "lora_target_modules", tuple(self.lora_target_modules))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            # inf/nan pass the range checks below (or overflow later): lr=1e400 trained to NaN weights and
            # wrote non-JSON `Infinity` into train_log.jsonl (review finding 6).
            if isinstance(value, float):
                _check(math.isfinite(value), f.name, value, "a finite number")
        _check(self.learning_rate > 0, "learning_rate", self.learning_rate, "> 0")
        _check(self.weight_decay >= 0, "weight_decay", self.weight_decay, ">= 0")
        _check(0 <= self.warmup_ratio < 1, "warmup_ratio", self.warmup_ratio, "in [0, 1)")
        _check(self.epochs > 0, "epochs", self.epochs, "> 0")
        _check(self.max_grad_norm >= 0, "max_grad_norm", self.max_grad_norm, ">= 0 (0 = no clipping)")
        _check(self.max_steps == -1 or self.max_steps > 0, "max_steps", self.max_steps, "-1 or > 0")
        _check(self.effective_batch_size >= 1, "effective_batch_size", self.effective_batch_size, ">= 1")
        _check(self.per_device_batch_size >= 1, "per_device_batch_size", self.per_device_batch_size, ">= 1")
        _check(self.max_length >= 8, "max_length", self.max_length, ">= 8")
        _check(self.lr_scheduler in SCHEDULERS, "lr_scheduler", self.lr_scheduler, f"one of {SCHEDULERS}")
        _check(self.optimizer in OPTIMIZERS, "optimizer", self.optimizer, f"one of {OPTIMIZERS}")
        _check(self.template in TEMPLATE_NAMES, "template", self.template, f"one of {TEMPLATE_NAMES}")
        _check(self.precision in PRECISIONS, "precision", self.precision, f"one of {PRECISIONS}")
        _check(self.lora_r >= 1, "lora_r", self.lora_r, ">= 1")
        _check(self.lora_alpha > 0, "lora_alpha", self.lora_alpha, "> 0")
        _check(0 <= self.lora_dropout < 1, "lora_dropout", self.lora_dropout, "in [0, 1)")
        _check(len(self.lora_target_modules) > 0 and all(isinstance(m, str) and m.strip() for m in self.lora_target_modules),
               "lora_target_modules", self.lora_target_modules, "non-empty module names")
        # transformers' `set_seed` range; its own error names no field.
        _check(isinstance(self.seed, int) and 0 <= self.seed < 2**32, "seed", self.seed, "an integer in [0, 2**32)")
        if self.deepspeed is not None:
            _check_deepspeed(self.deepspeed)
        _check(self.logging_steps >= 1, "logging_steps", self.logging_steps, ">= 1")
        _check(self.save_steps >= 1, "save_steps", self.save_steps, ">= 1")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["lora_target_modules"] = list(self.lora_target_modules)
        return out

    def replace(self, **overrides: Any) -> TrainConfig:
        _check_names(overrides)
        return dataclasses.replace(self, **overrides)


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(f"got {value!r}, allowed: {allowed}", field=name)


def _check_deepspeed(value: str) -> None:
    """The DeepSpeed JSON must exist when the config is made, not when the Trainer starts (it was then an
    internal error after the model had loaded); bare shipped names (`ds_zero2.json`) resolve to the package copy."""
    from pathlib import Path

    from selbench.training.trl_adapter import resolve_deepspeed

    try:
        path = resolve_deepspeed(value)
    except ValueError as exc:
        raise ConfigError(str(exc), field="deepspeed") from None
    if not Path(path).is_file():
        raise ConfigError(f"{value!r} is not a file (a DeepSpeed JSON path or a shipped name such as "
                          "'ds_zero2.json')", field="deepspeed")


def check_runnable(config: TrainConfig, cuda: bool | None = None) -> None:
    """Refuse, before any model is loaded, a config this machine cannot run (ConfigError naming the field).

    Kept out of `__post_init__` so that a GPU config can still be built, keyed and cached on a CPU machine.
    `cuda`: whether a CUDA GPU is present (default: ask torch).
    """
    import importlib.util

    if config.optimizer in CUDA_ONLY_OPTIMIZERS:
        if cuda is None:
            import torch

            cuda = torch.cuda.is_available()
        if not cuda:
            raise ConfigError(f"{config.optimizer!r} (bitsandbytes) needs a CUDA GPU and this machine has none; "
                              "use 'adamw_torch' (the same update rule, unpaged state)", field="optimizer")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise ConfigError(f"{config.optimizer!r} needs bitsandbytes: pip install bitsandbytes", field="optimizer")
    if config.deepspeed is not None and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError("DeepSpeed is not installed: pip install deepspeed", field="deepspeed")


def _check_names(overrides: dict[str, Any]) -> None:
    import difflib

    known = [f.name for f in dataclasses.fields(TrainConfig)]
    for name in overrides:
        if name not in known:
            near = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            raise ValueError(f"TrainConfig has no field {name!r}{hint}")


def from_preset(name: str, **overrides: Any) -> TrainConfig:
    """The preset `name` (`set1`, `set2`, `set3`, `set4-lora`, `demo`) with some fields overridden.

    >>> from_preset("set2").lr_scheduler, from_preset("set1", epochs=1).epochs
    ('cosine', 1)
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    _check_names(overrides)
    return TrainConfig(**{**PRESETS[name], **overrides})


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """`["lora_r=8", "epochs=2"]` -> typed overrides, each value parsed as its field's type.

    >>> parse_overrides(["lora_r=8", "lora_target_modules=q_proj,v_proj", "gradient_checkpointing=none"])
    {'lora_r': 8, 'lora_target_modules': ('q_proj', 'v_proj'), 'gradient_checkpointing': None}
    """
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"--set {item!r}: expected key=value")
        _check_names({key: None})
        out[key] = _parse_value(key, types[key], raw.strip())
    return out


def _parse_value(key: str, type_name: Any, raw: str) -> Any:
    type_name = str(type_name)
    if raw.lower() in ("none", "null") and "None" in type_name:
        return None
    try:
        if type_name.startswith("tuple"):
            return tuple(s.strip() for s in raw.split(",") if s.strip())
        if type_name.startswith("bool"):
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        return raw
    except ValueError:
        raise ValueError(f"--set {key}={raw}: not a valid {type_name}") from None


def batch_plan(effective_batch_size: int, per_device_batch_size: int, world_size: int = 1) -> tuple[int, int]:
    """(per-device batch, gradient accumulation) giving exactly `effective_batch_size` on `world_size` devices.

    The per-device batch is lowered when it alone exceeds what one device's share needs; an effective batch
    that the devices cannot split evenly is an error (silently training at another batch size would change
    the preset).

    >>> batch_plan(128, 2, 8)
    (2, 8)
    >>> batch_plan(128, 8, 1)
    (8, 16)
    >>> batch_plan(8, 16, 1)
    (8, 1)
    """
    per_device = min(per_device_batch_size, max(1, effective_batch_size // world_size))
    per_step = per_device * world_size
    if effective_batch_size % per_step:
        raise ValueError(
            f"TrainConfig field 'effective_batch_size': {effective_batch_size} is not a multiple of "
            f"per_device_batch_size {per_device} x {world_size} device(s); change one of them"
        )
    return per_device, effective_batch_size // per_step

"""The one file that knows TRL's and transformers' argument names (STYLE.md section 8).

TRL moves arguments between releases (e.g. SFTTrainer kwargs into SFTConfig, trl PR #1530; transformers 5
replaced `warmup_ratio` with a fractional `warmup_steps` and `group_by_length` with
`train_sampling_strategy`), so such changes touch this file only.

We hand SFTTrainer datasets that are already tokenized with exact `labels` (see `base.encode_segments`);
TRL then uses the labels as they are and only pads, groups or packs.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from selbench.training.presets import TrainConfig, batch_plan

log = logging.getLogger(__name__)


def hardware(config: TrainConfig) -> dict[str, Any]:
    """What this process trains on: device, world size, precision, gradient checkpointing, batch plan."""
    import os

    import torch

    cuda = torch.cuda.is_available()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else cuda
    per_device, accumulation = batch_plan(config.effective_batch_size, config.per_device_batch_size, world_size)
    return {
        "device": "cuda" if cuda else "cpu",
        "world_size": world_size,
        "precision": precision,
        "gradient_checkpointing": bool(checkpointing),
        "per_device_batch_size": per_device,
        "gradient_accumulation_steps": accumulation,
    }


def resolve_deepspeed(value: str | None) -> str | None:
    """A DeepSpeed JSON path; bare names of shipped configs (`ds_zero2.json`) resolve to the package copy."""
    if value is None:
        return None
    if not Path(value).exists() and "/" not in value:
        from selbench.training.configs import config_path

        return str(config_path(value))
    return value


def lora_model(model: Any, config: TrainConfig) -> Any:
    """Wrap `model` with a fresh LoRA adapter (peft)."""
    from peft import LoraConfig, get_peft_model
    from transformers import set_seed

    set_seed(config.seed)  # the adapter's random init (A matrices) is part of the run's seed

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def sft_args(config: TrainConfig, output_dir: Path, hw: dict[str, Any], *, packing_strategy: str | None) -> Any:
    """The SFTConfig for `config` on the hardware `hw` (see `hardware`)."""
    from trl import SFTConfig

    packing = packing_strategy is not None
    return SFTConfig(
        output_dir=str(output_dir),
        per_device_train_batch_size=hw["per_device_batch_size"],
        gradient_accumulation_steps=hw["gradient_accumulation_steps"],
        learning_rate=config.learning_rate,
        optim=config.optimizer,
        weight_decay=config.weight_decay,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=float(config.warmup_ratio),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        data_seed=config.seed,
        bf16=hw["precision"] == "bf16",
        fp16=hw["precision"] == "fp16",
        use_cpu=hw["device"] == "cpu",
        gradient_checkpointing=hw["gradient_checkpointing"],
        deepspeed=resolve_deepspeed(config.deepspeed),
        logging_steps=config.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=2,
        report_to="none",
        include_num_input_tokens_seen="non_padding",
        train_sampling_strategy="group_by_length" if (config.group_by_length and not packing) else "random",
        length_column_name="length",
        remove_unused_columns=False,
        dataloader_pin_memory=hw["device"] == "cuda",
        # Our datasets are tokenized, truncated and labelled already; TRL's own truncation stays off unless
        # packing, where max_length is the row length.
        max_length=config.max_length if packing else None,
        packing=packing,
        packing_strategy=packing_strategy or "bfd",
        completion_only_loss=False,
        disable_tqdm=False,
    )


def log_callback(log_path: Path, elapsed_path: Path, previous_seconds: float = 0.0) -> Any:
    """A TrainerCallback that appends one line per logging step to `log_path` (step, epoch, loss, lr,
    tokens/s) and, at each checkpoint, records the training seconds spent so far in `elapsed_path` so that a
    resumed run is charged for the time before the interruption."""
    from transformers import TrainerCallback

    class _LogCallback(TrainerCallback):
        def __init__(self) -> None:
            self.started = time.perf_counter()
            self.last: tuple[float, int] | None = None

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            self.started = time.perf_counter()
            self.last = (self.started, state.num_input_tokens_seen)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if not logs or "loss" not in logs:
                return
            now, tokens = time.perf_counter(), state.num_input_tokens_seen
            t0, n0 = self.last or (now, tokens)
            self.last = (now, tokens)
            row = {
                "step": state.global_step,
                "epoch": logs.get("epoch", state.epoch),
                "loss": float(logs["loss"]),
                "lr": float(logs.get("learning_rate", 0.0)),
                "grad_norm": None if logs.get("grad_norm") is None else float(logs["grad_norm"]),
                "tokens": int(tokens),
                "tokens_per_s": (tokens - n0) / (now - t0) if now > t0 else None,
            }
            with open(log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            seconds = previous_seconds + time.perf_counter() - self.started
            elapsed_path.write_text(json.dumps({"step": state.global_step, "seconds": seconds}), encoding="utf-8")

    return _LogCallback()


def build_trainer(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    config: TrainConfig,
    output_dir: Path,
    hw: dict[str, Any],
    *,
    packing_strategy: str | None,
    callbacks: list[Any] = (),
) -> Any:
    """An SFTTrainer over a tokenized dataset (`input_ids`, `labels`, `length`).

    On CPU the loss is the model's own cross-entropy over full logits instead of TRL's fused, tiled LM-head
    kernel: the same loss (mean over trained tokens of the accumulated batch), but the fused kernel measured
    ~30% slower per step on this CPU for SmolLM2-135M (batch 8 x 256, LoRA). TRL's entropy / token accuracy
    metrics are then not logged. On GPU TRL's kernel is kept (it saves the logits' memory).
    """
    from transformers import Trainer
    from trl import SFTTrainer

    plain_loss = hw["device"] == "cpu"

    class _SFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            if not plain_loss:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # No KV cache: with one, transformers ignores restarted position ids and packed examples would
            # attend to each other (see batching.packed_position_ids).
            inputs = {**inputs, "use_cache": False}
            return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)

    args = sft_args(config, output_dir, hw, packing_strategy=packing_strategy)
    return _SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )


def run_trainer(trainer: Any, resume_from: str | None) -> dict[str, Any]:
    """Train (resuming from a checkpoint folder when given) and return the final metrics."""
    output = trainer.train(resume_from_checkpoint=resume_from)
    metrics = dict(output.metrics)
    metrics["global_step"] = trainer.state.global_step
    metrics["num_input_tokens_seen"] = trainer.state.num_input_tokens_seen
    return metrics


def is_main_process(trainer: Any) -> bool:
    """True on rank 0 (and in single-process runs), after all ranks have finished training and saving."""
    trainer.accelerator.wait_for_everyone()
    return bool(trainer.is_world_process_zero())


def last_checkpoint(output_dir: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    if not output_dir.is_dir():
        return None
    return get_last_checkpoint(str(output_dir))


def checkpoint_step(path: str) -> int:
    """The global step a checkpoint folder was saved at."""
    state = json.loads((Path(path) / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state["global_step"])

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

from selbench.training.library_logs import STEP_LOGGER
from selbench.training.presets import TrainConfig, batch_plan

log = logging.getLogger(__name__)

# CPU training computes the loss without full-vocabulary logits (`build_trainer`); benchmarks set this to
# False to measure the full-logits baseline. It never changes the loss, so it is not part of any step key.
CHUNKED_LOSS = True


def hardware(config: TrainConfig) -> dict[str, Any]:
    """What this process trains on: device, world size, precision, gradient checkpointing, batch plan."""
    import os

    import torch

    cuda = torch.cuda.is_available()
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    precision = config.precision
    if precision == "auto":
        precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else "fp32"
    # On by default everywhere: identical results, and without it the activations dominate CPU memory.
    checkpointing = config.gradient_checkpointing if config.gradient_checkpointing is not None else True
    per_device, accumulation = batch_plan(config.effective_batch_size, config.per_device_batch_size, world_size)
    return {
        "device": "cuda" if cuda else "cpu",
        "world_size": world_size,
        "precision": precision,
        "gradient_checkpointing": bool(checkpointing),
        "per_device_batch_size": per_device,
        "gradient_accumulation_steps": accumulation,
    }


def return_freed_memory(threshold_bytes: int = 1024 * 1024) -> bool:
    """glibc only: serve allocations of `threshold_bytes` and more with mmap, so that freed tensors go back to
    the OS at once. Returns whether the setting was applied (not on other C libraries or systems).

    glibc raises its mmap threshold after every large free (up to 32 MiB), so a training step's activations
    (1-20 MB tensors) are then carved from per-thread heaps that keep the freed memory. Measured on CPU, LoRA
    on SmolLM2 (the README tour's 14-step runs, activation checkpointing on): peak RSS 1.57-1.64 GiB with
    `M_MMAP_THRESHOLD` = 1 MiB, 1.94-1.98 GiB with 4 MiB, ~2.4 GiB with glibc's default (2 steps); 1 MiB
    cost 6-8% more time than 4 MiB (page faults). Process-wide and permanent for the process.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or another C library
        return False
    m_mmap_threshold = -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, int(threshold_bytes)))


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
    peft_model = get_peft_model(model, lora)
    _save_without_hub_lookup(peft_model, lora)
    return peft_model


def _save_without_hub_lookup(peft_model: Any, lora: Any) -> None:
    """Make the adapter's saves (checkpoints, final) decide `save_embedding_layers` locally.

    peft's default ("auto") asks the 🤗 hub for the base model's config.json whenever the base is not a local
    folder (a packaged asset name such as `smollm2-135m-instruct`), to see whether the vocabulary was
    resized: a network call per checkpoint, and a "Name or service not known" warning offline. We never
    resize the vocabulary, so "auto" can only mean: save the embedding layers when LoRA targets them
    (peft's own first rule, `EMBEDDING_LAYER_NAMES`).
    """
    from peft.utils.constants import EMBEDDING_LAYER_NAMES

    targets = lora.target_modules or ()
    targets = {targets} if isinstance(targets, str) else set(targets)
    embeddings = any(name in targets for name in EMBEDDING_LAYER_NAMES)
    save = peft_model.save_pretrained

    def save_pretrained(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("save_embedding_layers", embeddings)
        return save(*args, **kwargs)

    peft_model.save_pretrained = save_pretrained


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




def progress_callback() -> Any:
    """A TrainerCallback in place of transformers' ProgressCallback: one progress bar on stderr, updated once
    per optimizer step with the latest loss; the Trainer's log dicts go to the `STEP_LOGGER` logger (the
    step's text log, see `library_logs`) instead of being printed under the bar."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class _Progress(TrainerCallback):
        bar: Any = None

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc="train", unit="step",
                            dynamic_ncols=True)

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if not logs:
                return
            logging.getLogger(STEP_LOGGER).info("step %d: %s", state.global_step, json.dumps(logs, default=str))
            if self.bar is not None and "loss" in logs:
                self.bar.set_postfix(loss=f"{float(logs['loss']):.4f}", refresh=False)

        def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return _Progress()


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
    chunked_loss: bool | None = None,
    quiet_progress: bool = False,
) -> Any:
    """An SFTTrainer over a tokenized dataset (`input_ids`, `labels`, `length`).

    On CPU the loss is the model's causal-LM cross-entropy computed by `chunked_loss.causal_lm_loss`: the
    same loss as the model's own (mean over trained tokens of the accumulated batch; `ForCausalLMLoss`),
    with the LM head fused into it and run a few hundred positions at a time, so the full-vocabulary
    logits (400 MB per tensor for SmolLM2 at batch 8 x 256) are never materialized. TRL's fused kernel
    measured ~30% slower per step on this CPU; its entropy / token accuracy metrics are not logged.
    `chunked_loss=False` (default: `CHUNKED_LOSS`) or a model type `chunked_loss` does not know uses the
    model's own loss over full logits. On GPU TRL's kernel is kept (it saves the logits' memory too).

    With `quiet_progress`, the Trainer's per-step log dicts go to the `STEP_LOGGER` logger and stderr shows
    one progress bar (`progress_callback`).
    """
    from transformers import Trainer
    from trl import SFTTrainer

    from selbench.training.chunked_loss import causal_lm_loss, causal_lm_parts

    plain_loss = hw["device"] == "cpu"
    chunked = CHUNKED_LOSS if chunked_loss is None else chunked_loss

    class _SFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
            if not plain_loss:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            # No KV cache: with one, transformers ignores restarted position ids and packed examples would
            # attend to each other (see batching.packed_position_ids).
            inputs = {**inputs, "use_cache": False}
            parts = None
            # Only where Trainer.compute_loss would take the model's own loss normalised by num_items_in_batch.
            if chunked and not return_outputs and self.model_accepts_loss_kwargs and self.label_smoother is None \
                    and self.compute_loss_func is None and "labels" in inputs:
                parts = causal_lm_parts(self.accelerator.unwrap_model(model))
            if parts is None:
                return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
            loss = causal_lm_loss(parts, inputs, num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                # as Trainer.compute_loss: num_items_in_batch counts every rank's tokens
                loss = loss * (self.accelerator.num_processes // self.get_tp_size() if self.args.n_gpu <= 1
                               else self.args.n_gpu)
            return loss

    args = sft_args(config, output_dir, hw, packing_strategy=packing_strategy)
    trainer = _SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    if quiet_progress:  # our progress bar replaces the one that prints every log dict under it
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        trainer.remove_callback(ProgressCallback)
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(progress_callback())
    return trainer


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

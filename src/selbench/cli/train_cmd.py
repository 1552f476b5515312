"""`selbench train`: fine-tune a model (full or LoRA) on a selection with one of the study's presets."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import typer

from selbench.cli.common import JsonOption, check_writable, emit, handle_errors

PRESET_NAMES = ("set1", "set2", "set3", "set4-lora", "demo")


@handle_errors
def train(
    model: str = typer.Option(..., "--model", help="Packaged model name, local folder or hf://org/name."),
    data: Path = typer.Option(..., "--data", help="Prepared dataset folder (data.parquet + manifest.json)."),
    selection: Path = typer.Option(None, "--selection", help="Selection manifest JSON; omit to train on all."),
    preset: str = typer.Option(..., "--preset", help=f"Hyperparameter preset: {', '.join(PRESET_NAMES)}."),
    out: Path = typer.Option(..., "--out", help="Output folder: model or adapter, train_log.jsonl, cost.json."),
    lora: bool = typer.Option(False, "--lora", help="Train a LoRA adapter instead of all weights."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a TrainConfig field: key=value (repeatable)."),
    template: str = typer.Option(None, "--template", help="auto (default), chat, alpaca or study."),
    seed: int = typer.Option(None, "--seed", help="Training seed (default 42)."),
    as_json: bool = JsonOption,
) -> None:
    """Fine-tune MODEL on the examples of a selection (resumable; cached by content).

    Examples:

      selbench train --model smollm2-135m-instruct --data runs/sharegpt --selection longest.json --preset demo --lora --out runs/longest-lora --json

      selbench train --model hf://meta-llama/Llama-2-7b-hf --data runs/alpaca --selection random.json --preset set1 --out runs/set1 --set per_device_batch_size=4
    """
    from selbench.errors import InputError
    from selbench.training.presets import check_runnable, from_preset, parse_overrides
    from selbench.training.train import train as run_training

    if preset not in PRESET_NAMES:
        raise ValueError(f"--preset {preset!r}: allowed: {', '.join(PRESET_NAMES)}")
    if selection is not None and selection.is_dir():
        raise InputError("is a folder; expected a selection manifest file (FILE.json)", path=selection,
                         field="selection")
    fields = parse_overrides(list(overrides or []))
    if lora:
        fields["lora"] = True
    if template is not None:
        fields["template"] = template
    if seed is not None:
        fields["seed"] = seed
    config = from_preset(preset, **fields)
    check_writable(out)
    check_runnable(config)  # e.g. a bitsandbytes optimizer on a CPU-only machine: refused before loading weights
    # The HF Trainer prints its log dicts on stdout; stdout is reserved for the result (`--json`: one JSON line).
    with contextlib.redirect_stdout(sys.stderr):
        try:
            result = run_training(model, data, selection, config, out)
        except ValueError as exc:
            # peft's "Target modules {...} not found in the base model" names no field; only the model can tell.
            if config.lora and "target modules" in str(exc).lower():
                raise InputError(str(exc), field="lora_target_modules") from exc
            raise
    emit(result, as_json)

"""`train()`: fine-tune a model on a selection (or a whole dataset), cached, resumable, cost-accounted.

The step key covers everything that can change the trained weights: the model's content (weights,
tokenizer, chat template), the dataset's sha256, the selected ids, the full `TrainConfig` with its template
and loss choice resolved, and the precision the hardware resolved to. Checkpoints live in the store's
`partial/train/<key>/` folder, so a killed run re-run with the same inputs resumes from its last checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from selbench.errors import InputError
from selbench.hashing import canonical_json, sha256_lines
from selbench.step import InputsNotReady, Step
from selbench.store import StepResult, StepStore, write_json_atomic
from selbench.training.base import (
    encode_segments,
    get_template,
    inference_chat_template,
    resolve_template_name,
)
from selbench.training.presets import TrainConfig

log = logging.getLogger(__name__)

VERSION = 3  # 2: alpaca/study-trained tokenizers carry their prompt as chat template; 3: study EOS/packing
MAX_DROPPED_IDS = 20
# Why an example can leave training without a trained token (see `tokenize_examples`), as said on stderr.
DROP_REASONS = {
    "too_long": "the prompt fills max_length={max_length}, so no response token is left",
    "empty_response": "the response has no token after templating",
}
LOG_FILE = "train_log.jsonl"
TEXT_LOG_FILE = "train.log"  # library warnings and the Trainer's log dicts (see library_logs)
COST_FILE = "cost.json"
# Weights dtype per precision: bf16 loads bf16 weights as the study did; fp16 AMP needs fp32 master weights.
WEIGHT_DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float32"}
# Not `config.json`: a full fine-tune's output folder holds the model's own config.json.
CONFIG_FILE = "train_config.json"


def load_tokenizer(spec: str) -> Any:
    """The base model's tokenizer alone (`selbench.assets.load_tokenizer`)."""
    from selbench.assets import load_tokenizer as load

    return load(spec)


def load_base_model(spec: str, dtype: str = "float32") -> tuple[Any, Any, str]:
    """(model, tokenizer, spec to record as the adapter's base) for a model spec (`selbench.assets.load_model`)."""
    from selbench.assets import load_model

    path = Path(spec)
    base_ref = str(path.resolve()) if path.is_dir() else spec
    # Loaded on the CPU: the Trainer (accelerate) places it, on each rank its own device.
    model, tokenizer = load_model(spec, dtype=dtype, device="cpu")
    return model, tokenizer, base_ref


def load_selection(data_dir: str | Path, selection_path: str | Path | None) -> tuple[list[Any], str, str]:
    """(examples in selection order, dataset sha256, ids sha256); the whole dataset without a selection.

    The manifest (DESIGN.md "selection manifest", as `selbench select` writes it) is checked before any
    training: `ids` a non-empty list of distinct strings all in `data_dir`; `dataset`, when present, an object
    whose string `sha256` is `data_dir`'s; `ids_sha256`, when present, `sha256_lines(ids)`. Unlike
    `selection.manifest.load_manifest`, hand-written manifests holding only `ids` are accepted (both read it
    with `selection.manifest.read_manifest`). A bad id's error carries the file line it sits on.
    """
    from selbench.data.schema import dataset_sha256, read_examples

    data_sha = dataset_sha256(data_dir)
    if selection_path is None:
        examples = read_examples(data_dir)
        ids = [e.id for e in examples]
        return examples, data_sha, sha256_lines(ids)
    from selbench.selection.manifest import bad_id_error, read_manifest

    selection_path = Path(selection_path)
    manifest = read_manifest(selection_path, complete=False)
    ids = manifest["ids"]
    recorded = (manifest.get("dataset") or {}).get("sha256")
    if recorded is not None and recorded != data_sha:
        raise InputError(
            f"selection was made on dataset {recorded[:12]}…, but {data_dir} is {data_sha[:12]}…",
            path=selection_path,
            field="dataset.sha256",
        )
    ids_sha = sha256_lines(ids)
    by_id = {e.id: e for e in read_examples(data_dir, ids=ids)}  # only the selected rows, not the whole pool
    for k, example_id in enumerate(ids):
        if example_id not in by_id:
            raise bad_id_error(selection_path, selection_path.read_text(encoding="utf-8"), ids, k,
                               f"id {example_id!r} is not in {data_dir}")
    return [by_id[i] for i in ids], data_sha, ids_sha


def tokenize_examples(
    examples: list[Any], tokenizer: Any, template_name: str, loss_on_prompt: bool, max_length: int, source: Any = None
):
    """(rows with input_ids/labels/length, counts of truncated and dropped examples).

    An example with no trained token left is dropped, and counted under the reason in `DROP_REASONS`:
    `too_long` when its prompt fills `max_length` (untruncated it would have trained tokens), else
    `empty_response` (its response has no token after templating). `dropped_ids` names the first
    `MAX_DROPPED_IDS` of each reason.

    `source` (the data or selection file) only names the file in error messages; `line` is the example's
    1-based position in the selection.
    """
    template = get_template(template_name)
    rows: dict[str, list[Any]] = {"input_ids": [], "labels": [], "length": []}
    counts: dict[str, Any] = {"truncated": 0, "dropped_no_response_tokens": 0, "dropped_by_reason": {},
                              "dropped_ids": {}}
    for i, example in enumerate(examples):
        try:
            segments = template.segments(example, tokenizer)
        except InputError as exc:
            raise InputError(f"example {example.id}: {exc.message}", path=source, line=i + 1, field=exc.field) from None
        enc = encode_segments(segments, tokenizer, max_length, loss_on_prompt=loss_on_prompt)
        if enc is None:
            whole = None if max_length is None else encode_segments(segments, tokenizer, None,
                                                                    loss_on_prompt=loss_on_prompt)
            reason = "too_long" if whole is not None else "empty_response"
            counts["dropped_no_response_tokens"] += 1
            counts["dropped_by_reason"][reason] = counts["dropped_by_reason"].get(reason, 0) + 1
            named = counts["dropped_ids"].setdefault(reason, [])
            if len(named) < MAX_DROPPED_IDS:
                named.append(example.id)
            continue
        if not getattr(template, "eos_in_loss", True) and tokenizer.eos_token_id is not None:
            eos = tokenizer.eos_token_id
            enc.labels[:] = [-100 if t == eos else lab for t, lab in zip(enc.input_ids, enc.labels, strict=True)]
        counts["truncated"] += int(enc.truncated)
        rows["input_ids"].append(enc.input_ids)
        rows["labels"].append(enc.labels)
        rows["length"].append(len(enc.input_ids))
    return rows, counts


def train(
    model_spec: str,
    data_dir: str | Path,
    selection_path: str | Path | None,
    config: TrainConfig,
    out_dir: str | Path | None,
    store: StepStore | None = None,
    *,
    callbacks: list[Any] = (),
) -> dict[str, Any]:
    """Fine-tune `model_spec` on the selected examples of `data_dir`; copy the result to `out_dir`.

    Args:
        model_spec: packaged model name, local folder or `hf://org/name`.
        data_dir: a prepared dataset (`data.parquet` + `manifest.json`).
        selection_path: a selection manifest (JSON with `ids`, `dataset.sha256`); None = the whole dataset.
        config: the run's settings (`from_preset`).
        out_dir: where to put the model (or adapter) folder with train_log.jsonl, cost.json,
            train_config.json; None = leave it in the store only.
        store: the step store (default: `$SELBENCH_CACHE`).
        callbacks: extra transformers TrainerCallbacks (progress hooks; tests use one to interrupt a run).

    Returns:
        `train_tokens`, `tokens_per_s`, `seconds`, `cost_usd`, `first_loss`, `final_loss`, `out`, `cached`,
        `key`, and the run's stats.
    """
    store = store or StepStore()
    if out_dir is not None:
        _check_out_dir(Path(out_dir))
    step = TrainStep(str(model_spec), str(data_dir), None if selection_path is None else str(selection_path), config,
                     callbacks=tuple(callbacks))
    step.load_examples()  # the selection is checked (InputError) before anything else, and read once
    # The key needs only the tokenizer (its chat template picks the template): a cached run loads no weights.
    key = step.key()
    try:
        result = step.run(store)
    except _NotMainProcess:
        return {"key": key, "out": None, "cached": False, "main_process": False}
    assert result.key == key, f"step key mismatch {result.key} != {key}"
    _report_dropped(result.stats, config.max_length)
    out = None
    if out_dir is not None:
        out = _publish(result.path, Path(out_dir))
    stats, cost = result.stats, result.cost
    return {
        "train_tokens": stats.get("train_tokens"),
        "tokens_per_s": stats.get("tokens_per_s"),
        "seconds": cost.get("wall_seconds"),
        "cost_usd": cost.get("usd"),
        "first_loss": stats.get("first_loss"),
        "final_loss": stats.get("final_loss"),
        "epoch_mean_loss": stats.get("epoch_mean_loss"),
        "global_step": stats.get("global_step"),
        "resumed_from_step": stats.get("resumed_from_step"),
        "n_trained": stats.get("n_trained"),
        "dropped": stats.get("dropped_no_response_tokens"),
        "dropped_by_reason": stats.get("dropped_by_reason"),
        "out": str(out) if out is not None else str(result.path),
        "store_path": str(result.path),
        "key": result.key,
        "cached": result.cached,
    }


def _compute_fn(step: TrainStep, store: StepStore, key: str) -> Callable[[Path], dict[str, Any]]:
    """The training run of `step` as the store's compute function (it writes the model into `tmp`)."""
    from selbench.training import trl_adapter

    model_spec, data_dir, selection_path, config = step.model, step.data, step.selection, step.train_config
    callbacks = step.callbacks
    examples = step.load_examples()[0]
    hw = step.hardware()
    key_config, inputs = step.raw_key_parts()
    template_name, loss_on_prompt = key_config["template"], key_config["loss_on_prompt"]

    def compute(tmp: Path) -> dict[str, Any]:
        from selbench.training.library_logs import library_output_to

        partial = store.partial_dir("train", key)
        # Library warnings, notes and progress bars go to the step's text log; the terminal keeps one
        # progress bar and selbench's own messages.
        with library_output_to(partial / TEXT_LOG_FILE):
            stats = _compute(tmp, partial)
        shutil.copyfile(partial / TEXT_LOG_FILE, tmp / TEXT_LOG_FILE)
        return stats

    def _compute(tmp: Path, partial: Path) -> dict[str, Any]:
        from selbench.cost import CostMeter

        if hw["device"] == "cpu":
            trl_adapter.return_freed_memory()  # peak RSS 2.4 -> 1.6 GiB for SmolLM2 LoRA (see its docstring)
        model, tokenizer, base_ref = load_base_model(model_spec, WEIGHT_DTYPES[hw["precision"]])
        # The study's template reproduces its TRL packing, which let packed examples see each other ("wrapped");
        # our own packing keeps them apart (best-fit decreasing, padding-free).
        packing = "wrapped" if template_name == "study" and config.packing else ("bfd" if config.packing else None)
        # Wrapped packing cuts the concatenated stream into rows, so a long example continues on the next row
        # (the study's ConstantLengthDataset) rather than being truncated to max_length first.
        rows, counts = tokenize_examples(
            examples,
            tokenizer,
            template_name,
            loss_on_prompt,
            None if packing == "wrapped" else config.max_length,
            selection_path or data_dir,
        )
        if not rows["input_ids"]:
            reasons = ", ".join(f"{n} {r}" for r, n in sorted(counts["dropped_by_reason"].items()))
            raise InputError(f"no example has response tokens left within max_length ({reasons})", path=data_dir,
                             field="max_length")
        ckpt_dir, log_path, elapsed_path = partial / "checkpoints", partial / LOG_FILE, partial / "elapsed.json"
        resume = trl_adapter.last_checkpoint(ckpt_dir)
        previous_seconds, resumed_step = 0.0, 0
        if resume is not None:
            resumed_step = trl_adapter.checkpoint_step(resume)
            _truncate_log(log_path, resumed_step)
            if elapsed_path.is_file():
                previous_seconds = float(json.loads(elapsed_path.read_text(encoding="utf-8"))["seconds"])
            log.info("resuming from %s (step %d)", resume, resumed_step)
        else:
            log_path.unlink(missing_ok=True)
        train_model = trl_adapter.lora_model(model, config) if config.lora else model
        dataset = _to_dataset(rows)
        with CostMeter("train") as meter:
            meter.add_seconds(previous_seconds)
            trainer = trl_adapter.build_trainer(
                train_model,
                tokenizer,
                dataset,
                config,
                ckpt_dir,
                hw,
                packing_strategy=packing,
                callbacks=[trl_adapter.log_callback(log_path, elapsed_path, previous_seconds), *callbacks],
                quiet_progress=True,
            )
            metrics = trl_adapter.run_trainer(trainer, resume)
            meter.add_tokens(metrics["num_input_tokens_seen"])
            trainer.save_model(str(tmp))
        if not trl_adapter.is_main_process(trainer):
            # Under `accelerate launch` every rank runs this function; only rank 0 writes the stored result.
            raise _NotMainProcess()
        # A model trained on the alpaca / study prompt is evaluated with that prompt: it becomes the saved
        # tokenizer's chat template, which every generation backend and server applies.
        chat_template = inference_chat_template(template_name, tokenizer)
        if chat_template is not None:
            tokenizer.chat_template = chat_template
        tokenizer.save_pretrained(str(tmp))
        if config.lora:
            _point_adapter_at_base(tmp, base_ref)
        shutil.copyfile(log_path, tmp / LOG_FILE)
        cost = meter.record.to_dict()
        write_json_atomic(tmp / COST_FILE, cost)
        rows_logged = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if line]
        losses = [row["loss"] for row in rows_logged]
        train_seconds = previous_seconds + float(metrics.get("train_runtime", 0.0))
        tokens = int(metrics["num_input_tokens_seen"])
        stats = {
            "n_examples": len(examples),
            "n_trained": len(rows["input_ids"]),
            **counts,
            "template": template_name,
            "lora": config.lora,
            "packing_strategy": packing,
            "global_step": metrics["global_step"],
            "resumed_from_step": resumed_step,
            "train_tokens": tokens,
            "train_seconds": train_seconds,
            "tokens_per_s": tokens / train_seconds if train_seconds > 0 else None,
            "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None,
            "epoch_mean_loss": epoch_mean_losses(rows_logged),
            "hardware": hw,
        }
        write_json_atomic(tmp / CONFIG_FILE, {"model": model_spec, "base_model": base_ref, "config": key_config, "inputs": inputs, "stats": stats})
        return {**stats, "cost": cost}

    return compute


def _report_dropped(stats: dict[str, Any], max_length: int) -> None:
    """One stderr line (a logging warning) saying how many examples training left out and why."""
    total = stats.get("dropped_no_response_tokens") or 0
    if not total:
        return
    reasons = stats.get("dropped_by_reason")
    if reasons is None:  # a result cached by a selbench that did not record reasons
        why = "reasons not recorded (cached by an older selbench)"
    else:
        why = "; ".join(
            f"{n} because {DROP_REASONS[r].format(max_length=max_length)}"
            f" (e.g. id {stats.get('dropped_ids', {}).get(r, ['?'])[0]})"
            for r, n in sorted(reasons.items())
        )
    n_examples = stats.get("n_examples", "?")
    log.warning("trained on %s of %s examples; dropped %d: %s", stats.get("n_trained"), n_examples, total, why)


def train_key(
    model_spec: str, data_dir: str | Path, selection_path: str | Path | None, config: TrainConfig, tokenizer: Any, precision: str
) -> str:
    """The step key `train` would use, without training (tests, dry runs): `TrainStep.key` with this tokenizer."""
    step = TrainStep(str(model_spec), str(data_dir), None if selection_path is None else str(selection_path), config,
                     precision=precision)
    object.__setattr__(step, "_tokenizer", tokenizer)
    return step.key()


def _key_parts(
    model_spec: str, data_sha: str, ids_sha: str, config: TrainConfig, tokenizer: Any, precision: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, inputs) of the step key: the TrainConfig with template, loss choice and precision resolved.

    A DeepSpeed JSON can set the optimizer, clipping and precision, so its bytes are keyed (`deepspeed_sha256`),
    not only its path: editing the file in place must not reuse the old result (STYLE.md section 5).
    """
    from selbench.assets.fingerprint import model_fingerprint
    from selbench.hashing import sha256_file
    from selbench.training.trl_adapter import resolve_deepspeed

    template_name = resolve_template_name(config.template, tokenizer)
    loss_on_prompt = config.loss_on_prompt
    if loss_on_prompt is None:
        loss_on_prompt = get_template(template_name).loss_on_prompt
    key_config = {**config.to_dict(), "template": template_name, "loss_on_prompt": loss_on_prompt, "precision": precision}
    if config.deepspeed is not None:
        key_config["deepspeed_sha256"] = sha256_file(resolve_deepspeed(config.deepspeed))
    inputs = {"model": model_fingerprint(model_spec), "dataset": data_sha, "ids": ids_sha}
    return key_config, inputs


class _NotMainProcess(Exception):
    """Raised on ranks other than 0 of a multi-process run, so that only rank 0 stores the result."""


def selection_identity(data_dir: str | Path, selection_path: str | Path | None) -> tuple[str, str]:
    """(dataset sha256, ids sha256) as `load_selection` gives them, from the manifests (and, without a
    selection, the dataset's `id` column) alone; a malformed selection manifest raises `load_selection`'s error."""
    from selbench.data.schema import dataset_sha256

    data_sha = dataset_sha256(data_dir)
    if selection_path is None:
        import pyarrow.parquet as pq

        data_file = Path(data_dir) / "data.parquet" if Path(data_dir).is_dir() else Path(data_dir)
        return data_sha, sha256_lines(pq.read_table(data_file, columns=["id"]).column("id").to_pylist())
    try:
        manifest = json.loads(Path(selection_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    ids = manifest.get("ids") if isinstance(manifest, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
        return load_selection(data_dir, selection_path)[1:]
    return data_sha, sha256_lines(ids)


@dataclass(frozen=True)
class TrainStep(Step):
    """Fine-tune a model on a selection (or a whole prepared dataset): the `train` step.

    Args:
        model: base model spec (packaged asset name, folder, `hf://org/name`).
        data: prepared dataset folder.
        selection: selection manifest (JSON with `ids`); None = every example of `data`.
        train_config: the run's `TrainConfig` (`from_preset(...)`).
        precision: the precision the run uses (`fp32`, `bf16`, `fp16`; part of the key). None = resolved from
            `train_config.precision` on the machine computing the key (`auto`: bf16 on a bf16 GPU, else
            fp32); set it when the step is planned on one machine and trained on another.
        out: (not in the key) a folder to publish the trained model into after `run()`.
        callbacks: (not in the key, not pickled) extra transformers TrainerCallbacks for an in-process run.

    Key: the model's file fingerprint (weights, tokenizer, chat template), the dataset's sha256 (its manifest),
    the selected ids' sha256 (the selection manifest's ids; without a selection, the dataset's id column), and
    the TrainConfig with template, loss choice and precision resolved; computing it loads the tokenizer only.
    Outputs: the store folder is the model (or LoRA adapter) folder, with `train_log.jsonl`, `cost.json`,
    `train_config.json`; meta.json `stats` has `train_tokens`, `tokens_per_s`, losses, `global_step`.
    Checkpoints live in `partial/train/<key>/`, so a killed run resumes from its last checkpoint.
    """

    model: str
    data: str
    selection: str | None
    train_config: TrainConfig
    precision: str | None = None
    out: str | None = field(default=None, compare=False)
    callbacks: tuple[Any, ...] = field(default=(), compare=False, repr=False)

    name: ClassVar[str] = "train"
    VERSION: ClassVar[int] = VERSION

    def __getstate__(self) -> dict[str, Any]:  # names and options only: no tokenizer, examples or callbacks
        state = {k: v for k, v in self.__dict__.items() if k not in ("_tokenizer", "_examples")}
        state["callbacks"] = ()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def resources(self) -> Mapping[str, float]:  # type: ignore[override]
        """One GPU when the config asks for one (bf16/fp16, DeepSpeed or a CUDA-only optimizer)."""
        from selbench.training.presets import CUDA_ONLY_OPTIMIZERS

        config = self.train_config
        gpu = ((self.precision or config.precision) in ("bf16", "fp16") or config.deepspeed is not None
               or config.optimizer in CUDA_ONLY_OPTIMIZERS)
        return {"cpus": 2, "gpus": 1 if gpu else 0, "memory_gb": 16 if gpu else 8}

    def tokenizer(self) -> Any:
        """The base model's tokenizer (loaded once per step object; its chat template picks the template)."""
        cached = self.__dict__.get("_tokenizer")
        if cached is None:
            cached = load_tokenizer(self.model)
            object.__setattr__(self, "_tokenizer", cached)
        return cached

    def load_examples(self) -> tuple[list[Any], str, str]:
        """`load_selection` of this step (checked, read once per step object)."""
        cached = self.__dict__.get("_examples")
        if cached is None:
            cached = load_selection(self.data, self.selection)
            object.__setattr__(self, "_examples", cached)
        return cached

    def hardware(self) -> dict[str, Any]:
        """`trl_adapter.hardware` of this machine, which must resolve to the precision in the key."""
        from selbench.training import trl_adapter

        hw = trl_adapter.hardware(self.train_config)
        if self.precision is not None and hw["precision"] != self.precision:
            raise RuntimeError(f"this train step is keyed for {self.precision} but precision "
                               f"{self.train_config.precision!r} resolves to {hw['precision']} on this machine")
        return hw

    def raw_key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(config, inputs) of the key as `_key_parts` builds them (before the canonical-JSON round trip)."""
        if not (Path(self.data) / "data.parquet").is_file() and not Path(self.data).is_file():
            raise InputsNotReady(f"{self.data} is not prepared yet")
        if self.selection is not None and not Path(self.selection).is_file():
            raise InputsNotReady(f"selection {self.selection} is not made yet")
        precision = self.precision or self.hardware()["precision"]
        data_sha, ids_sha = selection_identity(self.data, self.selection)
        return _key_parts(self.model, data_sha, ids_sha, self.train_config, self.tokenizer(), precision)

    def key_parts(self) -> tuple[dict[str, Any], dict[str, Any]]:
        config, inputs = self.raw_key_parts()
        return json.loads(canonical_json(config)), json.loads(canonical_json(inputs))

    def config(self) -> dict[str, Any]:
        return self.raw_key_parts()[0]

    def inputs(self) -> dict[str, Any]:
        return self.raw_key_parts()[1]

    def describe(self) -> str:
        trained_on = Path(self.selection).stem if self.selection else f"all of {Path(self.data).name}"
        return f"train {Path(self.model).name}{' lora' if self.train_config.lora else ''} on {trained_on}"

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        return _compute_fn(self, store, self.key())(tmp)

    def run(self, store: StepStore | None = None, *, force: bool = False) -> StepResult:
        """The stored model (trained first if absent), published to `out` when set."""
        result = super().run(store, force=force)
        if self.out is not None:
            _publish(result.path, Path(self.out))
        return result


def epoch_mean_losses(rows: list[dict[str, Any]]) -> list[float]:
    """Mean logged loss per epoch (rows with epoch in (k-1, k] form epoch k): a steadier learning signal than
    the first and last step's losses, which depend on what those two batches hold.

    >>> epoch_mean_losses([{"epoch": 0.5, "loss": 3.0}, {"epoch": 1.0, "loss": 1.0}, {"epoch": 1.5, "loss": 0.5}])
    [2.0, 0.5]
    """
    import math

    by_epoch: dict[int, list[float]] = {}
    for row in rows:
        by_epoch.setdefault(max(1, math.ceil(float(row["epoch"]) - 1e-9)), []).append(float(row["loss"]))
    return [sum(v) / len(v) for _, v in sorted(by_epoch.items())]


def _to_dataset(rows: dict[str, list[Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_dict(rows)


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be logged again)."""
    if not log_path.is_file():
        return
    kept = [line for line in log_path.read_text(encoding="utf-8").splitlines() if line and json.loads(line)["step"] <= step]
    log_path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _point_adapter_at_base(adapter_dir: Path, base_ref: str) -> None:
    """Record the resolvable base spec (packaged name or absolute path) so `load_model(adapter_dir)` works."""
    path = adapter_dir / "adapter_config.json"
    adapter = json.loads(path.read_text(encoding="utf-8"))
    adapter["base_model_name_or_path"] = base_ref
    write_json_atomic(path, adapter)


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to replace a non-empty folder that is not an earlier training output (checked before training)."""
    if out_dir.exists() and (not out_dir.is_dir() or (any(out_dir.iterdir()) and not (out_dir / CONFIG_FILE).is_file())):
        raise InputError("exists and is not a selbench training output; refusing to overwrite it", path=out_dir, field="out")


def _publish(src: Path, out_dir: Path) -> Path:
    """Copy a finished store entry to `out_dir` atomically (temp sibling + rename), replacing an older output."""
    out_dir = out_dir.resolve()
    _check_out_dir(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex[:8]}")
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("meta.json"))
    shutil.copyfile(src / "meta.json", tmp / "step_meta.json")
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{int(time.time())}")
        out_dir.rename(old)
        tmp.rename(out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out_dir)
    return out_dir

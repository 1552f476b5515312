"""The `prepare` step: a source file (or `hf://` dataset) -> `OUT/data.parquet` + `OUT/manifest.json`.

Runs in the step store keyed by (source, loader config, tokenizer used for statistics, content hash of the
input), so the same input is prepared once. Bad records stop the step with an `InputError` naming
FILE:LINE and field, before anything is written under OUT; with `skip_invalid` they are dropped and counted
by reason. The dataset hash (`sha256`) is `schema.rows_sha256` over the rows in order.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selbench.data.base import DEFAULT_MAX_CHARS, DEFAULT_MAX_PER_TASK, Loader, LoaderConfig, get_loader
from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.errors import InputError

if TYPE_CHECKING:
    from selbench.store import StepStore

log = logging.getLogger(__name__)

STEP = "prepare"
VERSION = 2  # 2: ShareGPT conversations opening with a gpt turn start at the next turn (FastChat)
DATA_FILE = "data.parquet"
MANIFEST_FILE = "manifest.json"
STATS_FILE = "stats.json"
# `--input NAME` that is not an existing path: packaged pools, by source.
PACKAGED_INPUTS = {"sharegpt": "sharegpt"}
MAPPED_SOURCES = ("jsonl", "parquet", "hf")


def resolve_input(source: str, input: str | Path) -> tuple[str | Path, str, Any]:
    """(what the loader reads, how the manifest names it, the input's content identity for the step key)."""
    text = str(input)
    if text.startswith("hf://"):
        from selbench.data.hf import hf_identity

        return text, text, {"hf": hf_identity(text)}
    path = Path(text).expanduser()
    if not path.exists() and PACKAGED_INPUTS.get(source) == text:
        from selbench.data.sharegpt import packaged_path

        path = packaged_path()
    if not path.exists():
        raise InputError("no such file", path=text, field="--input")
    if path.is_dir():
        raise InputError("expected a file (JSON, JSONL or Parquet), got a folder", path=text, field="--input")
    if not path.is_file():
        raise InputError("expected a file (JSON, JSONL or Parquet), got a device, pipe or socket", path=text,
                         field="--input")
    from selbench.hashing import sha256_file

    return path, str(path), {"sha256": sha256_file(path)}


def prepare(
    source: str,
    input: str | Path,
    out_dir: str | Path,
    *,
    skip_invalid: bool = False,
    max_per_task: int = DEFAULT_MAX_PER_TASK,
    field_map: Mapping[str, str] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
    store: StepStore | None = None,
) -> dict[str, Any]:
    """Prepare `input` as source `source` into `out_dir` and return its manifest (+ `cached`, `seconds`, `out`).

    Args:
        source: registered loader name (`selbench.data.base.LOADERS`).
        input: a file path, `hf://org/name[:split]`, or a packaged pool name (`sharegpt`).
        out_dir: folder that receives `data.parquet` and `manifest.json`.
        skip_invalid: drop invalid records (counted by reason) instead of stopping at the first.
        max_per_task: FLAN's per-task cap.
        field_map: canonical field -> source field (jsonl, parquet, hf only).
        max_chars: longer examples are invalid.
        store: a `StepStore` (default: the one under `$SELBENCH_CACHE`).

    Raises:
        InputError: bad input (FILE:LINE and field named) or bad options; nothing is written under OUT.
        KeyError: unknown source (with near-name suggestions).
    """
    from selbench.data.lengths import tokenizer_id
    from selbench.store import StepStore

    started = time.perf_counter()
    loader = get_loader(source)
    field_map = dict(field_map or {})
    if field_map:
        if source not in MAPPED_SOURCES:
            raise InputError(f"--field only applies to sources {', '.join(MAPPED_SOURCES)}, not {source!r}", field="--field")
        from selbench.data.jsonl import validate_field_map

        validate_field_map(field_map)
    config = LoaderConfig(max_per_task=max_per_task, field_map=tuple(sorted(field_map.items())), max_chars=max_chars)
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise InputError("exists and is not a folder", path=out_dir, field="--out")
    read_from, input_name, identity = resolve_input(source, input)
    step_config = {"source": source, "loader": config.to_dict(), "skip_invalid": skip_invalid, "tokenizer": tokenizer_id()}

    def compute(tmp: Path) -> dict[str, Any]:
        return _compute(tmp, loader, read_from, input_name, config, skip_invalid)

    store = store or StepStore()
    result = store.run(STEP, VERSION, step_config, {"input": identity}, compute)
    manifest = {
        **result.stats,
        "source": source,
        "input": input_name,
        "input_sha256": _input_hash(identity),
        "config": step_config,
        "step_key": result.key,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "selbench_version": _selbench_version(),
        "cost": result.cost,
    }
    _place(result.path, Path(out_dir), manifest)
    return {**manifest, "cached": result.cached, "seconds": round(time.perf_counter() - started, 3), "out": str(out_dir)}


def _compute(tmp: Path, loader: Loader, read_from: str | Path, input_name: str, config: LoaderConfig, skip_invalid: bool) -> dict[str, Any]:
    from tqdm.auto import tqdm

    from selbench.cost import CostMeter
    from selbench.data.lengths import summarize, token_lengths, tokenizer_id

    examples: list[Example] = []
    dropped: Counter[str] = Counter()
    truncated = None
    with CostMeter(STEP) as meter:
        records = tqdm(loader(read_from, config), desc=f"prepare {getattr(loader, 'name', 'data')}", unit=" rec", disable=None, mininterval=1.0)
        for line, item in records:
            if isinstance(item, Example):
                examples.append(item)
                continue
            if item.invalid and not skip_invalid:
                raise InputError(f"{item.message} [{item.reason}; --skip-invalid drops such records]", path=input_name, line=line, field=item.field)
            dropped[item.reason] += 1
            if item.reason == "truncated":
                truncated = {"line": line, "message": item.message}
            log.debug("%s:%d dropped (%s): %s", input_name, line, item.reason, item.message)
        if not examples:
            raise InputError(f"no usable examples (dropped: {dict(dropped) or 'none'})", path=input_name)
        write_examples(examples, tmp / DATA_FILE)
        prompt_tokens = token_lengths([_prompt(e) for e in examples])
        output_tokens = token_lengths([e.output for e in examples])
        meter.add_tokens(int(prompt_tokens.sum() + output_tokens.sum()))
    tasks = Counter(e.task for e in examples if e.task)
    return {
        "n": len(examples),
        "n_dropped": sum(dropped.values()),
        "dropped": dict(sorted(dropped.items())),
        "truncated": truncated,
        "sha256": rows_sha256(examples),
        "sources": dict(Counter(e.source for e in examples)),
        "tasks": dict(sorted(tasks.items())),
        "n_multi_turn": sum(len(e.messages) > 2 for e in examples),
        "tokens": {"tokenizer": tokenizer_id(), "instruction_input": summarize(prompt_tokens), "output": summarize(output_tokens)},
        "cost": meter.record.to_dict(),
    }


def _input_hash(identity: Mapping[str, Any]) -> str | None:
    """The input's sha256 (a file's bytes), or for a hub dataset its `datasets` fingerprint."""
    hf = identity.get("hf") or {}
    return identity.get("sha256") or hf.get("sha256") or hf.get("fingerprint")


def _prompt(example: Example) -> str:
    """instruction + input as the user turn shows them."""
    return example.instruction if not example.input else f"{example.instruction}\n\n{example.input}"


def _place(entry: Path, out_dir: Path, manifest: dict[str, Any]) -> None:
    """Copy the store entry's Parquet into OUT atomically, then write the manifest (last: the done marker)."""
    from selbench.hashing import sha256_file
    from selbench.store import write_json_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / DATA_FILE
    tmp = out_dir / f".{DATA_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    # The old manifest goes first: a run stopped before the new one is written leaves no stale pair.
    (out_dir / MANIFEST_FILE).unlink(missing_ok=True)
    try:
        shutil.copyfile(entry / DATA_FILE, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    write_json_atomic(out_dir / MANIFEST_FILE, {**manifest, "parquet_sha256": sha256_file(target)})


def _selbench_version() -> str:
    from selbench import __version__

    return __version__


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of a prepared dataset folder (InputError when it is not one)."""
    import json

    path = Path(out_dir) / MANIFEST_FILE
    if not path.is_file():
        raise InputError("not a prepared dataset (no manifest.json; run `selbench data prepare`)", path=out_dir)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"manifest.json is not valid JSON: {exc}", path=path) from None


__all__ = ["prepare", "read_manifest", "resolve_input"]

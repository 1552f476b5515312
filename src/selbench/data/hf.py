"""🤗 datasets input: `hf://org/name[@revision][:split]`, loaded with `datasets.load_dataset`.

Rows go through the chosen source's converter (`--source dolly --input hf://databricks/databricks-dolly-15k`);
`--source hf` reads flat rows with the `jsonl` field mapping. The dataset's identity for the step key is
its name, revision, split and `datasets` fingerprint (the hash `datasets` keeps of the data it loaded),
plus the content hash of a local file or folder.
`hf://` followed by a local folder written by `Dataset.save_to_disk` or a local data file also works (offline).
Needs network access for hub datasets; selbench's own machines never use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from selbench.data.jsonl import mapped_loader
from selbench.errors import InputError

LOADER = mapped_loader("hf")

_DATA_SUFFIXES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


@dataclass(frozen=True)
class HFSpec:
    """A parsed `hf://` address.

    Args:
        name: hub id, local dataset folder or local data file.
        revision: hub revision (branch, tag or commit), or None.
        split: split to read (default "train").
    """

    name: str
    revision: str | None = None
    split: str = "train"


def parse_hf(spec: str) -> HFSpec:
    """Parse `hf://org/name[@revision][:split]`.

    >>> parse_hf("hf://tatsu-lab/alpaca@main:train")
    HFSpec(name='tatsu-lab/alpaca', revision='main', split='train')
    """
    body = spec.removeprefix("hf://")
    split = "train"
    if ":" in body and not Path(body).exists():
        body, _, split = body.rpartition(":")
    revision = None
    if "@" in body and not Path(body).exists():
        body, _, revision = body.rpartition("@")
    if not body or not split:
        raise InputError("expected hf://org/name[@revision][:split]", path=spec, field="--input")
    return HFSpec(body, revision, split)


def load_hf(spec: str):
    """The 🤗 `Dataset` an `hf://` address names (cached per process and per local file state)."""
    local = Path(parse_hf(spec).name)
    stamp = None
    if local.exists():
        stamp = max((p.stat().st_mtime_ns, p.stat().st_size) for p in [local, *local.rglob("*")])
    return _load_hf(spec, stamp)


@lru_cache(maxsize=4)
def _load_hf(spec: str, stamp: tuple[int, int] | None):
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        from selbench.errors import MissingDependencyError

        raise MissingDependencyError("datasets", "hf") from exc
    parsed = parse_hf(spec)
    local = Path(parsed.name)
    try:
        if local.is_dir() and ((local / "state.json").is_file() or (local / "dataset_dict.json").is_file()):
            loaded = datasets.load_from_disk(str(local))
            return loaded[parsed.split] if isinstance(loaded, datasets.DatasetDict) else loaded
        if local.is_file():
            builder = _DATA_SUFFIXES.get(local.suffix)
            if builder is None:
                raise InputError(f"unsupported data file type {local.suffix!r}", path=spec, field="--input")
            return datasets.load_dataset(builder, data_files={parsed.split: str(local)}, split=parsed.split)
        return datasets.load_dataset(parsed.name, revision=parsed.revision, split=parsed.split)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - datasets raises many types (network, missing split, bad files)
        raise InputError(f"cannot load dataset: {type(exc).__name__}: {exc}", path=spec, field="--input") from None


def _identity_record(spec: str) -> Path:
    from selbench.hashing import sha256_json
    from selbench.store import StepStore

    return StepStore().root / "partial" / "hf-identity" / f"{sha256_json({'spec': spec})[:16]}.json"


def hf_identity(spec: str) -> dict[str, Any]:
    """What identifies an `hf://` input's content: name, revision, split and the `datasets` fingerprint.

    A hub dataset's identity is recorded in the store when it is loaded, so a plan (`selbench.step.planning`,
    e.g. `selbench run --dry-run`) reads it from there and never downloads; before its first load, a plan
    gets `InputsNotReady` (the prepare step is "to run").
    """
    import json

    from selbench.hashing import sha256_file, sha256_tree
    from selbench.step import InputsNotReady, is_planning
    from selbench.store import write_json_atomic

    parsed = parse_hf(spec)
    local = Path(parsed.name)
    record = None if local.exists() else _identity_record(spec)  # a hub dataset's identity is recorded
    if record is not None and is_planning():
        try:
            return json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise InputsNotReady(f"{spec} is not downloaded yet (a plan reads no hub)") from None
    dataset = load_hf(spec)
    identity = {"name": parsed.name, "revision": parsed.revision, "split": parsed.split, "fingerprint": dataset._fingerprint}
    if local.is_file():  # a local file's bytes say more than a fingerprint built from its mtime
        identity["sha256"] = sha256_file(local)
    elif local.is_dir():
        identity["sha256"] = sha256_tree(local)
    if record is not None:
        record.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(record, identity)
    return identity


def iter_hf_rows(spec: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of the dataset as dicts, numbered from 1."""
    for row_no, row in enumerate(load_hf(spec), start=1):
        yield row_no, dict(row)

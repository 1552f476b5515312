"""The canonical example (DESIGN.md "Canonical example") and its Parquet round trip.

Every source is converted into this one schema so that scoring, selection and training never care where
an example came from. Ids are content hashes of the normalized example, so the same example gets the same
id on every machine and in every run.
"""

from __future__ import annotations

import functools
import json
import os
import unicodedata
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selbench.hashing import sha256_json

COLUMNS = ("id", "source", "instruction", "input", "output", "messages", "task", "meta")


def _normalize(text: str) -> str:
    """NFC, unified newlines, stripped ends: whitespace noise must not change an id."""
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n")).strip()


def example_id(instruction: str, input: str, output: str, messages: Sequence[dict[str, str]] = ()) -> str:
    """Stable id: first 16 hex of sha256 over the normalized content (not the source or the task).

    >>> example_id("Say hi", "", "hi") == example_id("Say hi ", "", "hi\\r\\n")
    True
    """
    payload: dict[str, Any] = {"instruction": _normalize(instruction), "input": _normalize(input), "output": _normalize(output)}
    if messages:
        payload["messages"] = [[m["role"], _normalize(m["content"])] for m in messages]
    return sha256_json(payload)[:16]


@dataclass
class Example:
    """One instruction-response example.

    Args:
        instruction / input / output: the Alpaca-style fields (`input` may be empty).
        messages: the whole conversation as {role, content} turns; for single-turn sources it is the
            user/assistant pair built from the fields above.
        source: loader name ("alpaca", "dolly", ...).
        task: FLAN task or Dolly category; may be empty.
        meta: anything else worth keeping, stored as a JSON string.
        id: content hash (computed when empty).
    """

    instruction: str
    output: str
    input: str = ""
    source: str = ""
    messages: list[dict[str, str]] = field(default_factory=list)
    task: str = ""
    meta: str = "{}"
    id: str = ""

    def __post_init__(self) -> None:
        if not self.messages:
            user = self.instruction if not self.input else f"{self.instruction}\n\n{self.input}"
            self.messages = [{"role": "user", "content": user}, {"role": "assistant", "content": self.output}]
        if not self.id:
            multi_turn = self.messages if len(self.messages) > 2 else ()
            self.id = example_id(self.instruction, self.input, self.output, multi_turn)

    def to_row(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies every turn and is ~10x slower on 10k conversations.
        return {
            "instruction": self.instruction,
            "output": self.output,
            "input": self.input,
            "source": self.source,
            "messages": [{"role": m["role"], "content": m["content"]} for m in self.messages],
            "task": self.task,
            "meta": self.meta,
            "id": self.id,
        }

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Example:
        messages = row.get("messages") or []
        return cls(
            id=row["id"],
            source=row.get("source") or "",
            instruction=row["instruction"],
            input=row.get("input") or "",
            output=row["output"],
            messages=[{"role": m["role"], "content": m["content"]} for m in messages],
            task=row.get("task") or "",
            meta=row.get("meta") or "{}",
        )


def arrow_schema():
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    return pa.schema(
        [
            ("id", pa.string()),
            ("source", pa.string()),
            ("instruction", pa.string()),
            ("input", pa.string()),
            ("output", pa.string()),
            ("messages", pa.list_(message)),
            ("task", pa.string()),
            ("meta", pa.string()),
        ]
    )


def write_examples(examples: Iterable[Example], path: str | Path) -> None:
    """Write examples to Parquet atomically (temporary file in the same folder, then rename)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [e.to_row() for e in examples]
    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_examples(path: str | Path, ids: Collection[str] | None = None) -> list[Example]:
    """Read a prepared dataset: a `data.parquet` file or the folder holding it.

    With `ids`, only the rows with those ids, in file order (a 64-example selection of a 16k-conversation
    pool then costs a few MB instead of the whole pool as Python objects).
    """
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():
        path = path / "data.parquet"
    if not path.is_file():
        from selbench.errors import InputError

        raise InputError("no prepared dataset here (run `selbench data prepare` first)", path=path)
    if ids is not None:
        import pyarrow as pa

        table = pq.read_table(path, filters=[("id", "in", pa.array(sorted(set(ids)), pa.string()))])
        return [Example.from_row(r) for r in table.to_pylist()]
    return [Example.from_row(r) for r in pq.read_table(path).to_pylist()]


def rows_sha256(examples: Iterable[Example]) -> str:
    """The dataset content hash: sha256 over the canonical JSON of each row, newline-joined, in order.

    Defined on rows rather than on Parquet bytes, which change with the pyarrow version and compression.

    >>> rows_sha256([Example("a", "b")]) == rows_sha256([Example("a", "b")])
    True
    """
    import hashlib

    from selbench.hashing import canonical_json

    digest = hashlib.sha256()
    for i, example in enumerate(examples):
        if i:
            digest.update(b"\n")
        digest.update(canonical_json(example.to_row()).encode("utf-8"))
    return digest.hexdigest()


def _file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, hashed once per (path, size, mtime) in this process: scoring and selection
    both check the same Parquet file in one command."""
    stat = path.stat()
    return _file_sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _file_sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    from selbench.hashing import sha256_file

    return sha256_file(path)


def dataset_sha256(path: str | Path) -> str:
    """The dataset's content hash, as recorded in its manifest (else computed with `rows_sha256`).

    The manifest also records the bytes' hash of the `data.parquet` it describes (`parquet_sha256`); a
    Parquet file that is not that one (copied over, or left by an interrupted re-prepare) is an InputError,
    so no cached selection or score of another dataset is ever served for it.
    """
    from selbench.errors import InputError

    path = Path(path)
    folder = path if path.is_dir() else path.parent
    manifest_path = folder / "manifest.json"
    data_path = folder / "data.parquet" if path.is_dir() else path
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        expected = manifest.get("parquet_sha256")
        if expected and data_path.is_file() and _file_sha256(data_path) != expected:
            raise InputError(
                "is not the file its manifest.json describes (changed after prepare?): run `selbench data "
                "prepare` again",
                path=data_path,
                field="parquet_sha256",
            )
        return manifest["sha256"]
    return rows_sha256(read_examples(data_path))

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

from selbench.hashing import sha256_json, sha256_text

COLUMNS = ("id", "source", "instruction", "input", "output", "messages", "task", "meta")


def _normalize(text: str) -> str:
    """NFC, unified newlines, stripped ends: whitespace noise must not change an id."""
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", text).strip()


# What `canonical_json` (ensure_ascii=False) writes for a string; building the few fixed-shape objects below
# from it gives the same text as `canonical_json` at a fraction of the cost, which matters a million times.
_encode_str = json.encoder.encode_basestring


def _id_json(instruction: str, input: str, output: str, messages: Sequence[dict[str, str]]) -> str:
    """`canonical_json` of `example_id`'s payload (normalized texts; keys in sorted order)."""
    text = '{"input":' + _encode_str(_normalize(input)) + ',"instruction":' + _encode_str(_normalize(instruction))
    if messages:
        turns = ",".join("[" + _encode_str(m["role"]) + "," + _encode_str(_normalize(m["content"])) + "]" for m in messages)
        text += ',"messages":[' + turns + "]"
    return text + ',"output":' + _encode_str(_normalize(output)) + "}"


def example_id(instruction: str, input: str, output: str, messages: Sequence[dict[str, str]] = ()) -> str:
    """Stable id: first 16 hex of sha256 over the normalized content (not the source or the task).

    >>> example_id("Say hi", "", "hi") == example_id("Say hi ", "", "hi\\r\\n")
    True
    >>> from selbench.hashing import sha256_json, sha256_text
    >>> turns = [{"role": "user", "content": "q "}, {"role": "assistant", "content": "é\\r\\nb"}]
    >>> payload = {"instruction": "q", "input": "", "output": "a", "messages": [["user", "q"], ["assistant", "é\\nb"]]}
    >>> example_id("q", "", "a", turns) == sha256_json(payload)[:16]
    True
    """
    try:
        text = _id_json(instruction, input, output, messages)
    except TypeError:  # a non-string somewhere: the generic encoder says what it makes of it
        payload: dict[str, Any] = {"instruction": _normalize(instruction), "input": _normalize(input), "output": _normalize(output)}
        if messages:
            payload["messages"] = [[m["role"], _normalize(m["content"])] for m in messages]
        return sha256_json(payload)[:16]
    return sha256_text(text)[:16]


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


ROW_GROUP_SIZE = 65_536  # rows per Parquet row group: readers stream the file a row group at a time


def row_json(example: Example) -> str:
    """`selbench.hashing.canonical_json(example.to_row())`, written directly (about twice as fast).

    >>> from selbench.hashing import canonical_json
    >>> rows = [Example("a", "b"), Example("c", 'say "hi"\\n', input="é", task="t", meta='{"k": 1}')]
    >>> all(row_json(e) == canonical_json(e.to_row()) for e in rows)
    True
    """
    e = example
    try:
        instruction, output = _encode_str(e.instruction), _encode_str(e.output)
        # A single-turn conversation holds the instruction (when there is no input) and the output themselves.
        turns = ",".join(
            '{"content":' + (output if m["content"] is e.output else instruction if m["content"] is e.instruction
                             else _encode_str(m["content"])) + ',"role":' + _encode_str(m["role"]) + "}"
            for m in e.messages
        )
        return (
            '{"id":' + _encode_str(e.id) + ',"input":' + _encode_str(e.input) + ',"instruction":' + instruction
            + ',"messages":[' + turns + '],"meta":' + _encode_str(e.meta) + ',"output":' + output
            + ',"source":' + _encode_str(e.source) + ',"task":' + _encode_str(e.task) + "}"
        )
    except TypeError:  # a non-string field: the generic encoder decides
        from selbench.hashing import canonical_json

        return canonical_json(e.to_row())


def rows_text(examples: Sequence[Example]) -> str:
    """The rows' canonical JSON (`row_json`), newline-joined: what `rows_sha256` hashes."""
    return "\n".join(row_json(e) for e in examples)


def examples_batch(examples: Sequence[Example]):
    """The examples as one `pyarrow.RecordBatch` of `arrow_schema()`, built column by column."""
    import numpy as np
    import pyarrow as pa

    schema = arrow_schema()
    message_type = schema.field("messages").type
    counts = np.fromiter((len(e.messages) for e in examples), dtype=np.int32, count=len(examples))
    offsets = np.zeros(len(examples) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    turns = [m for e in examples for m in e.messages]
    message_values = pa.StructArray.from_arrays(
        [pa.array([m["role"] for m in turns], pa.string()), pa.array([m["content"] for m in turns], pa.string())],
        fields=list(message_type.value_type),
    )
    columns = {
        "id": [e.id for e in examples],
        "source": [e.source for e in examples],
        "instruction": [e.instruction for e in examples],
        "input": [e.input for e in examples],
        "output": [e.output for e in examples],
        "task": [e.task for e in examples],
        "meta": [e.meta for e in examples],
    }
    arrays = [
        pa.ListArray.from_arrays(pa.array(offsets), message_values, type=message_type)
        if name == "messages" else pa.array(columns[name], pa.string())
        for name in schema.names
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class ExampleWriter:
    """Streams examples into a Parquet file, row group by row group, hashing them as `rows_sha256` does.

    Memory is bounded by one row group, whatever the number of examples. Write to a temporary path and
    rename it when done (`write_examples` does): a failed run leaves a partial file behind.

    Args:
        path: the Parquet file to write.
        row_group_size: rows per row group.
    """

    def __init__(self, path: str | Path, row_group_size: int = ROW_GROUP_SIZE) -> None:
        import hashlib

        import pyarrow.parquet as pq

        self._writer = pq.ParquetWriter(path, arrow_schema(), compression="zstd")
        self._digest = hashlib.sha256()
        self._pending: list[Any] = []
        self._pending_rows = 0
        self.row_group_size = row_group_size
        self.n = 0

    def write(self, examples: Sequence[Example]) -> None:
        """Append examples (any number; they are buffered into row groups of `row_group_size`)."""
        if not examples:
            return
        if self.n:
            self._digest.update(b"\n")
        self._digest.update(rows_text(examples).encode("utf-8"))
        self.n += len(examples)
        batch = examples_batch(examples)
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.row_group_size:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._pending_rows:
            self._writer.write_table(pa.Table.from_batches(self._pending), row_group_size=self.row_group_size)
        self._pending, self._pending_rows = [], 0

    def close(self) -> str:
        """Finish the file; return the rows' content hash (`rows_sha256` of everything written)."""
        try:
            self._flush()
        finally:
            self._writer.close()
        return self._digest.hexdigest()

    def abort(self) -> None:
        """Close the file without writing what is buffered (after an error)."""
        self._pending, self._pending_rows = [], 0
        self._writer.close()


def write_examples(examples: Iterable[Example], path: str | Path, *, batch_size: int = 8192) -> str:
    """Write examples to Parquet atomically (temporary file in the same folder, then rename); return
    their `rows_sha256`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    writer = ExampleWriter(tmp)
    try:
        batch: list[Example] = []
        for example in examples:
            batch.append(example)
            if len(batch) >= batch_size:
                writer.write(batch)
                batch = []
        writer.write(batch)
        digest = writer.close()
        os.replace(tmp, path)
    except BaseException:
        writer.abort()
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return digest


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


def rows_sha256(examples: Iterable[Example], *, batch_size: int = 8192) -> str:
    """The dataset content hash: sha256 over the canonical JSON of each row, newline-joined, in order.

    Defined on rows rather than on Parquet bytes, which change with the pyarrow version and compression.

    >>> rows_sha256([Example("a", "b")]) == rows_sha256([Example("a", "b")])
    True
    """
    import hashlib
    from itertools import islice

    digest = hashlib.sha256()
    iterator = iter(examples)
    first = True
    while batch := list(islice(iterator, batch_size)):
        if not first:
            digest.update(b"\n")
        digest.update(rows_text(batch).encode("utf-8"))
        first = False
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

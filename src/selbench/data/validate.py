"""Per-record checks shared by every loader, and helpers converters use to read fields.

Converters only map a source's fields (returning `Dropped` for a missing or wrong-typed field); the checks
every source needs run here once: empty instruction or output (after strip), absurd length, content
duplicates (same id twice: the first occurrence in file order is kept; later ones are dropped and counted
for every source, never fatal: duplicates are data, not bad input), and FLAN's per-task cap.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from selbench.data.base import (
    DUPLICATE,
    EMPTY_INSTRUCTION,
    EMPTY_OUTPUT,
    MISSING_FIELD,
    TOO_LONG,
    WRONG_TYPE,
    Dropped,
    Item,
    LoaderConfig,
)
from selbench.data.schema import Example

if TYPE_CHECKING:
    from selbench.data.base import Loader
    from selbench.data.reader import RawItem

OVER_TASK_CAP = "over_task_cap"


def text_field(record: Mapping[str, Any], key: str, *, required: bool = True) -> str | Dropped:
    """`record[key]` as a string; a `Dropped` naming `key` when it is missing (and required) or not text.

    >>> text_field({"a": "x"}, "a")
    'x'
    >>> text_field({}, "a").reason
    'missing_field'
    >>> text_field({"a": None}, "a", required=False)
    ''
    """
    value = record.get(key)
    if value is None:
        if required:
            return Dropped(MISSING_FIELD, "required field is missing", field=key)
        return ""
    if not isinstance(value, str):
        return Dropped(WRONG_TYPE, f"expected a string, got {type(value).__name__}", field=key)
    return value


def extra_meta(record: Mapping[str, Any], used: Iterable[str]) -> str:
    """The record's other fields as a JSON string (kept in `Example.meta`)."""
    used = set(used)
    rest = {k: v for k, v in record.items() if k not in used}
    return json.dumps(rest, sort_keys=True, ensure_ascii=False, default=str) if rest else "{}"


def example_chars(example: Example) -> int:
    """Characters of the whole example: every turn of its conversation (which holds instruction+input+output)."""
    return sum(len(m["content"]) for m in example.messages)


class SeenIds:
    """The ids seen so far and the line each was first seen on, in about 16 bytes per id.

    A dict of a million id strings and line numbers costs ~130 MB; here the latest `spill` ids live in a
    dict and older ones in sorted numpy arrays (the 16-hex-digit content ids as uint64 keys), looked up by
    binary search. Ids that are not 16 hex digits (a plug-in loader's own) stay in the dict.

    >>> seen = SeenIds(spill=2)
    >>> for line, id_ in enumerate(["00000000000000ff", "000000000000000a", "x", "00000000000000b0"], 1):
    ...     seen.add(id_, line)
    >>> [seen.get(i) for i in ("000000000000000a", "x", "00000000000000b0", "00000000000000bb")]
    [2, 3, 4, None]
    """

    def __init__(self, spill: int = 1 << 16) -> None:
        self.spill = spill
        self.recent: dict[str, int] = {}
        self.other: dict[str, int] = {}
        self.keys = np.empty(0, dtype=np.uint64)
        self.lines = np.empty(0, dtype=np.int64)

    @staticmethod
    def _key(example_id: str) -> int | None:
        if len(example_id) != 16:
            return None
        try:
            return int(example_id, 16)
        except ValueError:
            return None

    def get(self, example_id: str) -> int | None:
        """The line `example_id` was first seen on, or None."""
        line = self.recent.get(example_id)
        if line is not None or not len(self.keys):
            return line if line is not None else self.other.get(example_id)
        key = self._key(example_id)
        if key is None:
            return self.other.get(example_id)
        i = int(self.keys.searchsorted(np.uint64(key)))
        return int(self.lines[i]) if i < len(self.keys) and int(self.keys[i]) == key else None

    def add(self, example_id: str, line: int) -> None:
        if self._key(example_id) is None:
            self.other[example_id] = line
            return
        self.recent[example_id] = line
        if len(self.recent) >= self.spill:
            keys = np.fromiter((int(k, 16) for k in self.recent), dtype=np.uint64, count=len(self.recent))
            lines = np.fromiter(self.recent.values(), dtype=np.int64, count=len(self.recent))
            keys, lines = np.concatenate([self.keys, keys]), np.concatenate([self.lines, lines])
            order = np.argsort(keys)
            self.keys, self.lines = keys[order], lines[order]
            self.recent.clear()


def validated(loader: Loader, raw: Iterable[RawItem], config: LoaderConfig) -> Iterator[Item]:
    """Convert raw records with `loader.convert` and apply the shared checks, keeping line numbers."""
    first_line = SeenIds()
    per_task: Counter[str] = Counter()
    for line, record in raw:
        item = record if isinstance(record, Dropped) else loader.convert(record, config)
        if isinstance(item, Example):
            item = _check(item, config, first_line)
            if isinstance(item, Dropped) and item.field in ("instruction", "output"):
                item = replace(item, field=loader.source_field(item.field, config))
        if isinstance(item, Example) and loader.per_task_cap:
            if per_task[item.task] >= config.max_per_task:
                item = Dropped(OVER_TASK_CAP, f"task {item.task!r} already has {config.max_per_task} examples", invalid=False)
            else:
                per_task[item.task] += 1
        if isinstance(item, Dropped) and item.invalid and item.reason in loader.lenient:
            item = replace(item, invalid=False)
        if isinstance(item, Example):
            first_line.add(item.id, line)
        yield line, item


def _check(example: Example, config: LoaderConfig, first_line: SeenIds) -> Example | Dropped:
    """Empty prompt (no instruction and no input: nothing to respond to), empty output, length, duplicate."""
    if not example.instruction.strip() and not example.input.strip():
        return Dropped(EMPTY_INSTRUCTION, "instruction is empty", field="instruction")
    if not example.output.strip():
        return Dropped(EMPTY_OUTPUT, "output is empty", field="output")
    chars = example_chars(example)
    if chars > config.max_chars:
        return Dropped(TOO_LONG, f"{chars} characters, more than max_chars={config.max_chars}")
    seen = first_line.get(example.id)
    if seen is not None:
        return Dropped(DUPLICATE, f"same content as line {seen} (id {example.id})", field="id", invalid=False)
    return example

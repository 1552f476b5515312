"""Per-record checks shared by every loader, and helpers converters use to read fields.

Converters only map a source's fields (returning `Dropped` for a missing or wrong-typed field); the checks
every source needs run here once: empty instruction or output (after strip), absurd length, content
duplicates (same id twice: the first occurrence in file order is kept), and FLAN's per-task cap.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

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


def validated(loader: Loader, raw: Iterable[RawItem], config: LoaderConfig) -> Iterator[Item]:
    """Convert raw records with `loader.convert` and apply the shared checks, keeping line numbers."""
    first_line: dict[str, int] = {}
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
            first_line[item.id] = line
        yield line, item


def _check(example: Example, config: LoaderConfig, first_line: Mapping[str, int]) -> Example | Dropped:
    """Empty prompt (no instruction and no input: nothing to respond to), empty output, length, duplicate."""
    if not example.instruction.strip() and not example.input.strip():
        return Dropped(EMPTY_INSTRUCTION, "instruction is empty", field="instruction")
    if not example.output.strip():
        return Dropped(EMPTY_OUTPUT, "output is empty", field="output")
    chars = example_chars(example)
    if chars > config.max_chars:
        return Dropped(TOO_LONG, f"{chars} characters, more than max_chars={config.max_chars}")
    if example.id in first_line:
        return Dropped(DUPLICATE, f"same content as line {first_line[example.id]} (id {example.id})", field="id")
    return example

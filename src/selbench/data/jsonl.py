"""Any JSON / JSONL file of flat records, with a field mapping (`--field instruction=prompt ...`).

Canonical fields are `instruction`, `input`, `output` and `task`; each is read from the source field of
the same name unless `LoaderConfig.field_map` says otherwise. `instruction` and `output` are required.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from selbench.data.base import Dropped, Loader, LoaderConfig
from selbench.data.schema import Example
from selbench.data.validate import extra_meta, text_field

CANONICAL_FIELDS = ("instruction", "input", "output", "task")
REQUIRED_FIELDS = ("instruction", "output")


def validate_field_map(field_map: Mapping[str, str]) -> None:
    """ValueError naming the key when a mapping targets a field that does not exist."""
    for key, value in field_map.items():
        if key not in CANONICAL_FIELDS:
            raise ValueError(f"--field {key}={value}: unknown canonical field {key!r} (allowed: {', '.join(CANONICAL_FIELDS)})")
        if not value:
            raise ValueError(f"--field {key}=: the source field name is empty")


def convert_mapped(record: Mapping[str, Any], config: LoaderConfig, *, source: str) -> Example | Dropped:
    """A flat record -> Example, reading each canonical field from its mapped source field."""
    mapping = config.mapping()
    values: dict[str, str] = {}
    for canonical in CANONICAL_FIELDS:
        name = mapping.get(canonical, canonical)
        value = text_field(record, name, required=canonical in REQUIRED_FIELDS)
        if isinstance(value, Dropped):
            return value
        values[canonical] = value
    used = [mapping.get(c, c) for c in CANONICAL_FIELDS]
    return Example(source=source, meta=extra_meta(record, used), **values)


def mapped_loader(name: str) -> Loader:
    """A field-mapped loader registered as `name` (jsonl, parquet, hf)."""
    return Loader(name=name, convert=partial(convert_mapped, source=name))


LOADER = mapped_loader("jsonl")

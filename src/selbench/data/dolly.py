"""Databricks Dolly 15k: JSONL `{instruction, context, response, category}`.

`context` becomes `input` and `category` becomes `task` (Conover et al., 2023;
databricks/databricks-dolly-15k `databricks-dolly-15k.jsonl`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selbench.data.base import Dropped, Loader, LoaderConfig
from selbench.data.schema import Example
from selbench.data.validate import extra_meta, text_field

FIELDS = ("instruction", "context", "response", "category")


def convert_dolly(record: Mapping[str, Any], config: LoaderConfig) -> Example | Dropped:
    """One Dolly record -> Example (context -> input, category -> task)."""
    values = {}
    for key in FIELDS:
        value = text_field(record, key, required=key in ("instruction", "response"))
        if isinstance(value, Dropped):
            return value
        values[key] = value
    return Example(
        instruction=values["instruction"],
        input=values["context"],
        output=values["response"],
        task=values["category"],
        source="dolly",
        meta=extra_meta(record, FIELDS),
    )


LOADER = Loader(
    name="dolly",
    convert=convert_dolly,
    fields=(("instruction", "instruction"), ("input", "context"), ("output", "response"), ("task", "category")),
)

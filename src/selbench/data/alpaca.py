"""Alpaca-format records: `{instruction, input, output}` in a JSON array or JSONL.

Stanford Alpaca (Taori et al., 2023; tatsu-lab/stanford_alpaca `alpaca_data.json`) and the many datasets
that copy its schema. `input` may be absent or empty; other fields are kept in `meta`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selbench.data.base import Dropped, Loader, LoaderConfig
from selbench.data.schema import Example
from selbench.data.validate import extra_meta, text_field

FIELDS = ("instruction", "input", "output")


def convert_alpaca(record: Mapping[str, Any], config: LoaderConfig) -> Example | Dropped:
    """One Alpaca record -> Example (`input` optional)."""
    return convert_instruction_record(record, "alpaca")


def convert_instruction_record(record: Mapping[str, Any], source: str) -> Example | Dropped:
    """A flat {instruction, input?, output} record (Alpaca, flat Evol-Instruct) -> Example of `source`."""
    instruction = text_field(record, "instruction")
    if isinstance(instruction, Dropped):
        return instruction
    input_ = text_field(record, "input", required=False)
    if isinstance(input_, Dropped):
        return input_
    output = text_field(record, "output")
    if isinstance(output, Dropped):
        return output
    return Example(instruction=instruction, input=input_, output=output, source=source, meta=extra_meta(record, FIELDS))


LOADER = Loader(name="alpaca", convert=convert_alpaca)

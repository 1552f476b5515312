"""FLAN collection records: `{inputs, targets, task}` (JSON array or JSONL), capped per task.

The FLAN 2022 collection (Longpre et al., 2023; google-research/FLAN) ships `inputs` (the templated prompt),
`targets` and the task under `task`, `task_name` or `_task_name` depending on the export. "Chasing Random"
(Diddee & Ippolito) caps FLAN at 50 examples per task; here the cap is `LoaderConfig.max_per_task`
(default 50) and it is deterministic: the FIRST examples of each task in file order are kept, the rest are
dropped with reason `over_task_cap` (the paper does not say how its 50 were drawn; a file-order prefix
needs no seed and is the same on every machine). Shuffle the file beforehand for a random subset.
The templated prompt goes to `instruction` and `input` stays empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selbench.data.base import MISSING_FIELD, Dropped, Loader, LoaderConfig
from selbench.data.schema import Example
from selbench.data.validate import extra_meta, text_field

TASK_KEYS = ("task", "task_name", "_task_name")


def convert_flan(record: Mapping[str, Any], config: LoaderConfig) -> Example | Dropped:
    """One FLAN record -> Example (inputs -> instruction, targets -> output, task name -> task)."""
    inputs = text_field(record, "inputs")
    if isinstance(inputs, Dropped):
        return inputs
    targets = text_field(record, "targets")
    if isinstance(targets, Dropped):
        return targets
    task_key = next((k for k in TASK_KEYS if record.get(k) is not None), None)
    if task_key is None:
        return Dropped(MISSING_FIELD, f"required field is missing (one of {', '.join(TASK_KEYS)})", field="task")
    task = text_field(record, task_key)
    if isinstance(task, Dropped):
        return task
    used = ("inputs", "targets", *TASK_KEYS)
    return Example(instruction=inputs, output=targets, task=task, source="flan", meta=extra_meta(record, used))


LOADER = Loader(
    name="flan",
    convert=convert_flan,
    per_task_cap=True,
    fields=(("instruction", "inputs"), ("output", "targets")),
)

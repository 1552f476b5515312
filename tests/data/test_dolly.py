"""Dolly loader: context -> input, category -> task; checks name Dolly's own field names."""

from __future__ import annotations

import json

from selbench.data.base import Dropped, LoaderConfig, get_loader
from selbench.data.schema import Example

ROWS = [
    {"instruction": "When did Virgin Australia start operating?", "context": "Virgin Australia commenced services on 31 August 2000.", "response": "On 31 August 2000.", "category": "closed_qa"},
    {"instruction": "Which is a species of fish? Tope or Rope", "context": "", "response": "Tope", "category": "classification"},
    {"instruction": "Why can camels survive long without water?", "context": "", "response": "They store fat in their humps.", "category": "open_qa"},
]


def _write(tmp_path, rows):
    path = tmp_path / "databricks-dolly-15k.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_dolly_maps_context_and_category(tmp_path):
    items = list(get_loader("dolly")(_write(tmp_path, ROWS), LoaderConfig()))
    examples = [e for _, e in items]
    assert all(isinstance(e, Example) for e in examples)
    assert examples[0].input.startswith("Virgin Australia commenced")
    assert [e.task for e in examples] == ["closed_qa", "classification", "open_qa"]
    assert examples[1].input == "" and examples[1].output == "Tope"
    assert {e.source for e in examples} == {"dolly"}


def test_dolly_problems_name_dolly_fields(tmp_path):
    rows = [ROWS[0], {**ROWS[1], "response": "   "}, {k: v for k, v in ROWS[2].items() if k != "response"}, {**ROWS[0], "category": 3}]
    items = list(get_loader("dolly")(_write(tmp_path, rows), LoaderConfig()))
    dropped = [(line, e.reason, e.field) for line, e in items if isinstance(e, Dropped)]
    assert dropped == [(2, "empty_output", "response"), (3, "missing_field", "response"), (4, "wrong_type", "category")]

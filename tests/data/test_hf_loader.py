"""`hf://` inputs through 🤗 datasets, offline: a local saved dataset and a local JSON file."""

from __future__ import annotations

import json

import pytest

from selbench.data.hf import hf_identity, parse_hf
from selbench.data.prepare import prepare
from selbench.data.schema import read_examples
from selbench.errors import InputError

DOLLY = [
    {"instruction": "Name a colour.", "context": "", "response": "Blue", "category": "brainstorming"},
    {"instruction": "Summarize.", "context": "Long text here.", "response": "Short.", "category": "summarization"},
]


def test_parse_hf():
    spec = parse_hf("hf://databricks/databricks-dolly-15k@abc123:validation")
    assert (spec.name, spec.revision, spec.split) == ("databricks/databricks-dolly-15k", "abc123", "validation")
    assert parse_hf("hf://tatsu-lab/alpaca").split == "train"


def test_hf_saved_dataset_with_field_map(tmp_path):
    import datasets

    folder = tmp_path / "saved"
    datasets.Dataset.from_list([{"q": "Say hi", "a": "hi"}, {"q": "Say bye", "a": "bye"}]).save_to_disk(str(folder))
    result = prepare("hf", f"hf://{folder}", tmp_path / "out", field_map={"instruction": "q", "output": "a"})
    assert result["n"] == 2 and result["input"] == f"hf://{folder}"
    assert [e.output for e in read_examples(tmp_path / "out")] == ["hi", "bye"]


def test_hf_local_json_through_dolly_converter(tmp_path):
    path = tmp_path / "dolly.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in DOLLY), encoding="utf-8")
    result = prepare("dolly", f"hf://{path}", tmp_path / "out")
    assert result["n"] == 2 and result["tasks"] == {"brainstorming": 1, "summarization": 1}
    first = hf_identity(f"hf://{path}")
    assert first["fingerprint"] and first["sha256"]
    path.write_text("\n".join(json.dumps(r) for r in DOLLY[:1]), encoding="utf-8")
    assert hf_identity(f"hf://{path}")["sha256"] != first["sha256"]
    again = prepare("dolly", f"hf://{path}", tmp_path / "out2")
    assert again["n"] == 1 and not again["cached"] and again["step_key"] != result["step_key"]


def test_hf_bad_row_names_row_and_field(tmp_path):
    path = tmp_path / "dolly.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [DOLLY[0], {**DOLLY[1], "response": ""}]), encoding="utf-8")
    with pytest.raises(InputError) as err:
        prepare("dolly", f"hf://{path}", tmp_path / "out")
    assert (err.value.line, err.value.field) == (2, "response")
    assert not (tmp_path / "out" / "data.parquet").exists()

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


def test_prepare_from_the_hub_at_a_revision_and_split(local_hub, tmp_path):
    """`hf://org/name@rev:split` through 🤗 datasets against a hub on 127.0.0.1; same rows as the local file."""
    repo = tmp_path / "dolly-repo"
    repo.mkdir()
    (repo / "databricks-dolly-15k.jsonl").write_text("\n".join(json.dumps(r) for r in DOLLY), encoding="utf-8")
    run, hub = local_hub({("dataset", "databricks/databricks-dolly-15k"): repo})
    out = tmp_path / "prepared"
    result = run(["selbench", "data", "prepare", "--source", "dolly", "--input",
                  "hf://databricks/databricks-dolly-15k@main:train", "--out", str(out), "--json"])
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["n"] == 2 and summary["n_dropped"] == 0
    local = prepare("dolly", str(repo / "databricks-dolly-15k.jsonl"), tmp_path / "local")
    assert [e.id for e in read_examples(out)] == [e.id for e in read_examples(tmp_path / "local")]
    assert local["n"] == 2 and any("/datasets/databricks/databricks-dolly-15k/" in r for r in hub.requests)
    bad = run(["selbench", "data", "prepare", "--source", "dolly", "--input",
               "hf://databricks/databricks-dolly-15k:validation", "--out", str(tmp_path / "bad")])
    assert bad.returncode == 2 and "validation" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad" / "data.parquet").exists()

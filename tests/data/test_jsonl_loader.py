"""jsonl / parquet loaders: field mapping over flat records."""

from __future__ import annotations

import json

import pytest

from selbench.data.base import Dropped, LoaderConfig, get_loader
from selbench.data.jsonl import validate_field_map
from selbench.data.schema import Example

ROWS = [
    {"prompt": "Write a haiku about rain.", "completion": "Soft rain on the roof", "kind": "poetry"},
    {"prompt": "What is 2+2?", "completion": "4", "kind": "math"},
    {"prompt": "Capital of France?", "completion": "Paris", "kind": "geo", "extra": 1},
]
MAP = (("instruction", "prompt"), ("output", "completion"), ("task", "kind"))


def test_jsonl_field_map(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8")
    examples = [e for _, e in get_loader("jsonl")(path, LoaderConfig(field_map=MAP))]
    assert [(e.instruction, e.output, e.task) for e in examples] == [(r["prompt"], r["completion"], r["kind"]) for r in ROWS]
    assert json.loads(examples[2].meta) == {"extra": 1} and examples[0].source == "jsonl"


def test_jsonl_default_names_and_missing_mapped_field(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"instruction": "a", "output": "b"}) + "\n" + json.dumps({"prompt": "a"}) + "\n", encoding="utf-8")
    (_, ok), (_, bad) = get_loader("jsonl")(path, LoaderConfig())
    assert isinstance(ok, Example) and ok.output == "b"
    (_, first), (_, second) = get_loader("jsonl")(path, LoaderConfig(field_map=MAP))
    assert isinstance(first, Dropped) and first.field == "prompt"
    assert isinstance(second, Dropped) and second.field == "completion"


def test_parquet_input_with_field_map(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "data.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    items = list(get_loader("parquet")(path, LoaderConfig(field_map=MAP)))
    assert [line for line, _ in items] == [1, 2, 3]
    assert [e.output for _, e in items] == ["Soft rain on the roof", "4", "Paris"]
    assert items[0][1].source == "parquet"
    # Recognised by its magic bytes too, whatever the file is called.
    renamed = path.rename(tmp_path / "data.bin")
    assert [e.output for _, e in get_loader("parquet")(renamed, LoaderConfig(field_map=MAP))] == ["Soft rain on the roof", "4", "Paris"]


def test_field_map_validation():
    validate_field_map({"instruction": "prompt"})
    with pytest.raises(ValueError, match="unknown canonical field 'answer'"):
        validate_field_map({"answer": "completion"})
    with pytest.raises(ValueError, match="maps a field twice"):
        LoaderConfig(field_map=(("output", "a"), ("output", "b")))
    with pytest.raises(ValueError, match="max_chars"):
        LoaderConfig(max_chars=0)


def test_malformed_line_reports_the_column_where_it_breaks(tmp_path):
    from typer.testing import CliRunner

    from selbench.cli.main import app

    path = tmp_path / "bad.jsonl"
    path.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "a", "output": \n')
    result = CliRunner().invoke(app, ["data", "prepare", "--source", "jsonl", "--input", str(path),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{path}:2:" in result.output and "column 32" in result.output

"""Alpaca loader on tiny files in Alpaca's real schema, plus id stability."""

from __future__ import annotations

import json

from selbench.data.base import Dropped, LoaderConfig, get_loader
from selbench.data.schema import Example

ROWS = [
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": "1. Eat well.\n2. Sleep.\n3. Move."},
    {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
    {"instruction": "Name a prime number.", "output": "7", "note": "no input field"},
]


def _load(path):
    return list(get_loader("alpaca")(path, LoaderConfig()))


def test_alpaca_json_array(tmp_path):
    path = tmp_path / "alpaca_data.json"
    path.write_text(json.dumps(ROWS, indent=4), encoding="utf-8")
    items = _load(path)
    examples = [item for _, item in items]
    assert all(isinstance(e, Example) for e in examples)
    assert [e.instruction for e in examples] == [r["instruction"] for r in ROWS]
    assert examples[1].input == "Good morning" and examples[2].input == ""
    assert examples[1].messages == [
        {"role": "user", "content": "Translate to French.\n\nGood morning"},
        {"role": "assistant", "content": "Bonjour"},
    ]
    assert json.loads(examples[2].meta) == {"note": "no input field"}
    assert {e.source for e in examples} == {"alpaca"}
    # Line numbers point at the line where each element starts in the pretty-printed array.
    text_lines = path.read_text().splitlines()
    for line, example in items:
        assert text_lines[line - 1].strip() == "{", (line, example.instruction)
        assert json.dumps(example.instruction)[1:-1] in "\n".join(text_lines[line - 1 : line + 4])


def test_alpaca_jsonl_gives_same_ids_as_json(tmp_path):
    array, lines = tmp_path / "a.json", tmp_path / "a.jsonl"
    array.write_text(json.dumps(ROWS), encoding="utf-8")
    lines.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n", encoding="utf-8")
    from_array = [item.id for _, item in _load(array)]
    from_lines = [item.id for _, item in _load(lines)]
    assert from_array == from_lines and len(set(from_array)) == 3
    assert [line for line, _ in _load(lines)] == [1, 2, 3]


def test_ids_stable_across_runs_and_whitespace_noise(tmp_path):
    clean, noisy = tmp_path / "clean.jsonl", tmp_path / "noisy.jsonl"
    clean.write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8")
    noisy_rows = [
        {**r, "instruction": "  " + r["instruction"] + " \n", "output": r["output"].replace("\n", "\r\n") + "\r\n"} for r in ROWS
    ]
    noisy.write_bytes(("\r\n".join(json.dumps(r) for r in noisy_rows) + "\r\n").encode("utf-8"))
    first = [e.id for _, e in _load(clean)]
    assert first == [e.id for _, e in _load(clean)]
    assert first == [e.id for _, e in _load(noisy)]
    # The id is a content hash, the same on every machine and in every version: pinned for the first row.
    assert first[0] == "b812a0396382419c"


def test_alpaca_missing_output_is_dropped_with_field_and_line(tmp_path):
    path = tmp_path / "a.jsonl"
    rows = [ROWS[0], {"instruction": "No answer here", "input": ""}]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    (_, ok), (line, bad) = _load(path)
    assert isinstance(ok, Example)
    assert isinstance(bad, Dropped) and line == 2
    assert (bad.reason, bad.field, bad.invalid) == ("missing_field", "output", True)

"""The streaming JSON-array reader across chunk boundaries (tiny chunks force every split point)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selbench.data import reader
from selbench.data.base import Dropped

records = st.lists(
    st.dictionaries(
        st.sampled_from(["instruction", "output", "n", "x y"]),
        st.one_of(st.text(max_size=12), st.integers(), st.booleans()),
        max_size=3,
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(rows=records, indent=st.sampled_from([None, 0, 2]), chunk=st.integers(min_value=1, max_value=17), ascii_only=st.booleans())
def test_array_reader_matches_json_load(rows, indent, chunk, ascii_only):
    text = json.dumps(rows, indent=indent, ensure_ascii=ascii_only)
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(reader, "_CHUNK_CHARS", chunk)
        path = Path(tmp) / "rows.json"
        path.write_text(text, encoding="utf-8")
        got = list(reader.iter_records(path))
    assert [r for _, r in got] == rows
    lines = text.split("\n")  # JSON breaks lines only with "\n" (str.splitlines also splits on U+0085)
    for line, _ in got:
        assert line == 1 if indent is None else lines[line - 1].strip().startswith("{")


@settings(max_examples=80, deadline=None)
@given(rows=records.filter(bool), cut=st.floats(min_value=0.0, max_value=1.0), chunk=st.integers(min_value=1, max_value=9))
def test_any_cut_of_an_array_reads_a_prefix_then_truncation(rows, cut, chunk):
    text = json.dumps(rows, indent=1, ensure_ascii=False)
    cut_at = 1 + int(cut * (len(text) - 2))  # keep "[" and lose at least the closing "]"
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(reader, "_CHUNK_CHARS", chunk)
        path = Path(tmp) / "cut.json"
        path.write_text(text[:cut_at], encoding="utf-8")
        got = [r for _, r in reader.iter_records(path, allow_truncated=True)]
    *whole, last = got
    assert whole == rows[: len(whole)]
    assert isinstance(last, Dropped) and last.reason == "truncated" and not last.invalid


def test_truncated_and_non_utf8_with_small_chunks(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "_CHUNK_CHARS", 5)
    rows = [{"instruction": "héllo ✓", "output": "a"}, {"instruction": "b", "output": "c"}]
    text = json.dumps(rows, indent=1, ensure_ascii=False)
    path = tmp_path / "cut.json"
    path.write_bytes(text.encode("utf-8")[:-9])
    got = list(reader.iter_records(path, allow_truncated=True))
    assert got[0] == (2, rows[0])
    assert isinstance(got[1][1], Dropped) and got[1][1].reason == "truncated" and not got[1][1].invalid
    path.write_bytes(text.encode("utf-8").replace("✓".encode(), b"\xff"))
    (line, first), (_, second) = reader.iter_records(path)
    assert line == 2 and isinstance(first, Dropped) and (first.reason, first.field) == ("non_utf8", "instruction")
    assert second == rows[1]

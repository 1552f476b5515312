"""ShareGPT loader: turn rules, drop reasons, truncated files, and the packaged pool."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from selbench.data.base import Dropped, LoaderConfig, get_loader
from selbench.data.schema import Example


def _conv(*turns):
    return [{"from": who, "value": text} for who, text in turns]


ROWS = [
    {"id": "QWJhYvA_0", "conversations": _conv(("human", "Summarize PLF."), ("gpt", "Here are the ideas."), ("human", "More?"), ("gpt", "Sure."))},
    {"id": "QWJhYvA_1", "conversations": _conv(("gpt", "continued answer"), ("human", "thanks"))},
    {"id": "i6IyJda_0", "conversations": []},
    {"id": "A5AbcES_0", "conversations": _conv(("human", "hello?"))},
    {"id": "sys_0", "conversations": _conv(("system", "Be brief."), ("human", "2+2?"), ("gpt", "4"))},
    {"id": "bing_0", "conversations": _conv(("human", "search this"), ("bing", "results"))},
    {"id": "pair_0", "conversations": _conv(("human", "Say hi"), ("gpt", "hi"))},
    # FastChat skips one leading gpt turn and starts at the next
    {"id": "lead_0", "conversations": _conv(("gpt", "continued"), ("human", "Thanks, now do Y"), ("gpt", "Here is Y"))},
    {"id": "lead_1", "conversations": _conv(("gpt", "a"), ("gpt", "b"), ("human", "c"), ("gpt", "d"))},
]


def _load(path):
    return list(get_loader("sharegpt")(path, LoaderConfig()))


def test_sharegpt_turn_rules_and_drop_reasons(tmp_path):
    path = tmp_path / "sg.json"
    path.write_text(json.dumps(ROWS, indent=2), encoding="utf-8")
    items = [item for _, item in _load(path)]
    kept = [e for e in items if isinstance(e, Example)]
    reasons = [d.reason for d in items if isinstance(d, Dropped)]
    assert reasons == ["no_reply", "empty_conversation", "no_reply", "unknown_role", "not_human_first"]
    assert all(not d.invalid for d in items if isinstance(d, Dropped))
    multi, system, pair, lead = kept
    assert (lead.instruction, lead.output) == ("Thanks, now do Y", "Here is Y")
    assert [m["role"] for m in lead.messages] == ["user", "assistant"]  # the skipped turn is not trained on
    assert (multi.instruction, multi.output) == ("Summarize PLF.", "Here are the ideas.")
    assert [m["role"] for m in multi.messages] == ["user", "assistant", "user", "assistant"]
    assert json.loads(multi.meta) == {"id": "QWJhYvA_0"}
    assert system.messages[0] == {"role": "system", "content": "Be brief."} and system.instruction == "2+2?"
    assert pair.messages == [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}]
    # The whole conversation is part of the id: same first turn, different follow-up -> different id.
    other = {"id": "x", "conversations": _conv(("human", "Summarize PLF."), ("gpt", "Here are the ideas."), ("human", "Less?"), ("gpt", "Ok."))}
    path.write_text(json.dumps([ROWS[0], other]), encoding="utf-8")
    a, b = (item for _, item in _load(path))
    assert a.id != b.id


def test_sharegpt_duplicates_and_empty_turns_are_counted_not_fatal(tmp_path):
    path = tmp_path / "sg.json"
    rows = [ROWS[6], {**ROWS[6], "id": "pair_1"}, {"id": "e", "conversations": _conv(("human", "q"), ("gpt", " "))}]
    path.write_text(json.dumps(rows), encoding="utf-8")
    dropped = [item for _, item in _load(path) if isinstance(item, Dropped)]
    assert [(d.reason, d.invalid) for d in dropped] == [("duplicate", False), ("empty_output", False)]


def test_truncated_array_yields_whole_records_then_truncation(tmp_path):
    text = json.dumps(ROWS, indent=2)
    cut = text.index("bing_0") + 20  # inside the 6th element
    path = tmp_path / "cut.json"
    path.write_text(text[:cut], encoding="utf-8")
    items = _load(path)
    assert len(items) == 6
    line, last = items[-1]
    assert last.reason == "truncated" and not last.invalid and "5 whole elements" in last.message
    assert text.splitlines()[line - 1].strip() == "{"


def test_packaged_sharegpt_pool_streams_with_truncation():
    from selbench.data.reader import iter_records
    from selbench.data.sharegpt import packaged_path

    try:
        path = packaged_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    started = time.perf_counter()
    records = list(iter_records(path, allow_truncated=True))
    seconds = time.perf_counter() - started
    whole = [r for _, r in records if isinstance(r, dict)]
    problems = [r for _, r in records if isinstance(r, Dropped)]
    assert 17_000 <= len(whole) <= 18_000, len(whole)
    assert len(problems) == 1 and problems[0].reason == "truncated" and not problems[0].invalid
    assert f"{len(whole)} whole elements" in problems[0].message
    assert whole[0]["id"] == "QWJhYvA_0"
    assert seconds < 30, seconds


def test_input_name_sharegpt_means_the_packaged_pool(tmp_path, monkeypatch):
    from selbench.data.prepare import resolve_input
    from selbench.data.sharegpt import packaged_path

    try:
        packaged = packaged_path()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    monkeypatch.chdir(tmp_path)
    read_from, name, identity = resolve_input("sharegpt", "sharegpt")
    assert read_from == packaged and name == str(packaged) and len(identity["sha256"]) == 64
    # A real file called "sharegpt" wins over the packaged pool.
    (tmp_path / "sharegpt").write_text("[]", encoding="utf-8")
    assert resolve_input("sharegpt", "sharegpt")[0] == Path("sharegpt")

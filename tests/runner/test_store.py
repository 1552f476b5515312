"""The step store: keys, atomic completion, caching, interruption, gc."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selbench.store import META_FILE, StepStore, step_key, write_json_atomic


def _writer(calls: list[int], payload: str = "hello"):
    def compute(tmp: Path) -> dict:
        calls.append(1)
        (tmp / "out.txt").write_text(payload)
        return {"n": len(payload), "cost": {"step": "t", "wall_seconds": 0.5, "usd": 0.001}}

    return compute


def test_run_computes_once_then_hits_cache(tmp_path):
    store = StepStore(tmp_path)
    calls: list[int] = []
    first = store.run("demo", 1, {"a": 1}, {"data": "abc"}, _writer(calls))
    second = store.run("demo", 1, {"a": 1}, {"data": "abc"}, _writer(calls))
    assert calls == [1]
    assert not first.cached and second.cached
    assert first.key == second.key
    assert (second.path / "out.txt").read_text() == "hello"
    assert second.stats == {"n": 5}
    assert second.cost["usd"] == pytest.approx(0.001)


@pytest.mark.parametrize(
    "changed",
    [
        dict(step="other"),
        dict(version=2),
        dict(config={"a": 2}),
        dict(config={"a": 1, "b": None}),
        dict(inputs={"data": "abd"}),
        dict(inputs={"data": "abc", "model": "m"}),
    ],
)
def test_every_part_of_the_key_matters(changed):
    base = dict(step="demo", version=1, config={"a": 1}, inputs={"data": "abc"})
    assert step_key(**base) != step_key(**{**base, **changed})


def test_key_ignores_dict_order():
    assert step_key("s", 1, {"a": 1, "b": 2}, {"x": "1", "y": "2"}) == step_key("s", 1, {"b": 2, "a": 1}, {"y": "2", "x": "1"})


def test_interrupted_compute_leaves_nothing_and_reruns(tmp_path):
    store = StepStore(tmp_path)

    def boom(tmp: Path) -> dict:
        (tmp / "half.txt").write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.run("demo", 1, {}, {}, boom)
    key = step_key("demo", 1, {}, {})
    assert store.lookup("demo", key) is None
    assert not any((tmp_path / "steps" / "demo").iterdir()), "no temporary or partial folder is left"
    calls: list[int] = []
    result = store.run("demo", 1, {}, {}, _writer(calls))
    assert calls == [1] and not result.cached


def test_folder_without_meta_is_not_done(tmp_path):
    store = StepStore(tmp_path)
    key = step_key("demo", 1, {}, {})
    crashed = store.path("demo", key)
    crashed.mkdir(parents=True)
    (crashed / "out.txt").write_text("stale")
    assert store.lookup("demo", key) is None
    removed = store.gc()
    assert crashed in removed and not crashed.exists()


def test_meta_records_config_inputs_and_libraries(tmp_path):
    store = StepStore(tmp_path)
    result = store.run("demo", 3, {"p": [1, 2]}, {"data": "x"}, _writer([]))
    meta = json.loads((result.path / META_FILE).read_text())
    assert meta["config"] == {"p": [1, 2]} and meta["inputs"] == {"data": "x"} and meta["version"] == 3
    assert "numpy" in meta["libraries"]


def test_partial_dir_survives_until_completion(tmp_path):
    store = StepStore(tmp_path)
    key = step_key("demo", 1, {}, {})
    shard = store.partial_dir("demo", key) / "shard-0.json"
    write_json_atomic(shard, {"done": True})
    assert shard.exists()
    store.run("demo", 1, {}, {}, _writer([]))
    assert not shard.parent.exists(), "progress of a finished step is cleaned up"


def test_entries_du_and_gc_older_than(tmp_path):
    store = StepStore(tmp_path)
    store.run("a", 1, {}, {}, _writer([]))
    store.run("b", 1, {}, {}, _writer([], "x" * 1000))
    assert [e.step for e in store.entries()] == ["a", "b"]
    usage = store.du()
    assert usage["b"] > usage["a"] > 0
    assert store.gc(older_than_s=3600) == []
    removed = store.gc(older_than_s=0, step="a")
    assert len(removed) == 1 and [e.step for e in store.entries()] == ["b"]


def test_write_json_atomic_replaces_whole_file(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomic(path, {"a": 1})
    write_json_atomic(path, {"b": 2})
    assert json.loads(path.read_text()) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]

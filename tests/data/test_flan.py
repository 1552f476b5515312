"""FLAN loader: task-name variants and the deterministic first-N-per-task cap."""

from __future__ import annotations

import json

from selbench.data.base import Dropped, LoaderConfig, get_loader
from selbench.data.schema import Example


def _rows():
    rows = []
    for task, key in (("cosmos_qa", "task"), ("anli_r1", "task_name"), ("wiki_dialog", "_task_name")):
        for i in range(4):
            rows.append({"inputs": f"{task} question {i}?", "targets": f"answer {i}", key: task, "template_type": "zs_opt"})
    return rows


def test_flan_task_keys_and_cap_keep_first_in_file_order(tmp_path):
    path = tmp_path / "flan.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _rows()), encoding="utf-8")
    items = list(get_loader("flan")(path, LoaderConfig(max_per_task=2)))
    kept = [(line, e) for line, e in items if isinstance(e, Example)]
    assert [line for line, _ in kept] == [1, 2, 5, 6, 9, 10]
    assert [e.task for _, e in kept] == ["cosmos_qa"] * 2 + ["anli_r1"] * 2 + ["wiki_dialog"] * 2
    assert kept[0][1].instruction == "cosmos_qa question 0?" and kept[0][1].output == "answer 0"
    assert json.loads(kept[0][1].meta) == {"template_type": "zs_opt"}
    capped = [e for _, e in items if isinstance(e, Dropped)]
    assert len(capped) == 6 and {(d.reason, d.invalid) for d in capped} == {("over_task_cap", False)}


def test_flan_default_cap_is_50(tmp_path):
    path = tmp_path / "flan.json"
    rows = [{"inputs": f"q{i}", "targets": f"a{i}", "task": "t"} for i in range(53)]
    path.write_text(json.dumps(rows), encoding="utf-8")
    items = list(get_loader("flan")(path, LoaderConfig()))
    assert sum(isinstance(e, Example) for _, e in items) == 50


def test_flan_missing_task_names_field(tmp_path):
    path = tmp_path / "flan.jsonl"
    path.write_text(json.dumps({"inputs": "q", "targets": "a"}) + "\n", encoding="utf-8")
    ((line, item),) = list(get_loader("flan")(path, LoaderConfig()))
    assert (line, item.reason, item.field) == (1, "missing_field", "task")

"""Evol-Instruct loader: the 70k {instruction, output} release and the V2 conversations release."""

from __future__ import annotations

import json

from selbench.data.base import Dropped, LoaderConfig, get_loader
from selbench.data.schema import Example


def test_evol_both_releases(tmp_path):
    rows = [
        {"instruction": "Rewrite the sentence in passive voice: The cat ate the fish.", "output": "The fish was eaten by the cat."},
        {"idx": "alpaca_1", "conversations": [{"from": "human", "value": "Explain recursion briefly."}, {"from": "gpt", "value": "A function calling itself."}]},
        {"idx": "sharegpt_2", "conversations": [{"from": "gpt", "value": "orphan reply"}]},
    ]
    path = tmp_path / "WizardLM_evol_instruct_V2_143k.json"
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    items = [e for _, e in get_loader("evol")(path, LoaderConfig())]
    assert isinstance(items[0], Example) and items[0].output == "The fish was eaten by the cat."
    assert isinstance(items[1], Example) and items[1].instruction == "Explain recursion briefly."
    assert items[1].source == "evol" and json.loads(items[1].meta) == {"idx": "alpaca_1"}
    assert isinstance(items[2], Dropped) and items[2].reason == "not_human_first" and not items[2].invalid

"""RDS+: the round-robin equals the reference's replay; target files; similarities by hand; end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from selbench.errors import InputError
from selbench.scoring.rds import TARGET_SETS, read_targets
from selbench.selection.base import STRATEGIES, Pool
from selbench.selection.rds import RdsStrategy, round_robin_select


def replay(sims: np.ndarray, budget: int) -> list[int]:
    """get_top_influences.py --selection_method max, replayed literally with lists."""
    ranked = {t: sorted(((i, float(sims[i, t])) for i in range(len(sims))), key=lambda x: x[1], reverse=True)
              for t in range(sims.shape[1])}
    saved: list[int] = []
    while len(saved) < budget:
        for t in ranked:
            inst, _ = ranked[t].pop(0)
            if inst not in saved:
                saved.append(inst)
            if len(saved) >= budget:
                break
    return saved[:budget]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("m", [1, 3, 17])
def test_round_robin_equals_the_reference_replay(seed, m):
    rng = np.random.default_rng(seed)
    sims = np.round(rng.uniform(-1, 1, (150, m)), 1)  # 21 distinct values: ties everywhere
    sims[:, 1:] = np.where(rng.random((150, m - 1)) < 0.5, sims[:, :1], sims[:, 1:])  # targets agree often
    for budget in (1, 7, 40, 149, 150):
        assert round_robin_select(sims, budget).tolist() == replay(sims, budget)


def test_round_robin_bad_budget():
    with pytest.raises(ValueError, match="budget"):
        round_robin_select(np.zeros((3, 2)), 4)


def test_target_files(tmp_path):
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('"Write a poem."\n\n{"instruction": "Add", "input": "2 and 3", "output": "5"}\n'
                     '{"messages": [{"role": "user", "content": "Hi"}]}\n')
    assert read_targets(jsonl) == [
        [{"role": "user", "content": "Write a poem."}],
        [{"role": "user", "content": "Add\n\n2 and 3"}, {"role": "assistant", "content": "5"}],
        [{"role": "user", "content": "Hi"}],
    ]
    as_json = tmp_path / "t.json"
    as_json.write_text(json.dumps(["Write a poem.", {"instruction": "Sum it"}]))
    assert len(read_targets(as_json)) == 2


def test_the_packaged_target_set_is_named_and_leaks_no_benchmark_item(tmp_path, monkeypatch):
    """`target: instruction-following` (the demo's RDS+) reads the packaged set; a file of that name in the
    working folder still wins; none of its instructions is an IFEval or AlpacaEval prompt."""
    from selbench.assets import asset_path

    targets = read_targets("instruction-following")
    assert len(targets) == 12 and all(t[0]["role"] == "user" and len(t) == 1 for t in targets)
    assert targets == read_targets(TARGET_SETS["instruction-following"])
    monkeypatch.chdir(tmp_path)
    (tmp_path / "instruction-following").write_text('"Only mine."\n')
    assert read_targets("instruction-following") == [[{"role": "user", "content": "Only mine."}]]
    ifeval = [json.loads(line)["prompt"] for line in asset_path("ifeval").read_text().splitlines() if line.strip()]
    alpacaeval = [r["instruction"] for r in json.loads(asset_path("alpacaeval").read_text())]
    benchmark = {" ".join(t.lower().split()) for t in ifeval + alpacaeval}
    assert len(benchmark) > 900
    for target in targets:
        words = " ".join(target[0]["content"].lower().split())
        assert not any(words in item or item in words for item in benchmark), words


@pytest.mark.parametrize("text, line, field", [
    ('"ok"\n{"instruction": 3}\n', 2, "instruction"),
    ('"ok"\n\n{"messages": [{"role": "bot", "content": "x"}]}\n', 3, "messages"),
    ('{"instruction": "x", "output": 5}\n', 1, "output"),
    ('"ok"\n{not json\n', 2, None),
    ('[]', None, "target"),
])
def test_bad_target_files_name_record_and_field(tmp_path, text, line, field):
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_targets(path)
    assert (info.value.line, info.value.field, info.value.path) == (line, field, str(path))


def test_similarities_by_hand_and_the_key(tmp_path, tiny_model_dir, tiny_model, make_chat_pool):
    import torch

    from selbench.scoring.base import ScoreStep, compute_scores, read_scores
    from selbench.scoring.chat_text import conversation_text

    model, tokenizer = tiny_model
    target = tmp_path / "target.jsonl"
    target.write_text('"Tell me about astronomy."\n{"instruction": "Cook pasta", "output": "Boil water."}\n')
    data = make_chat_pool(tmp_path / "pool", 5)
    options = {"target": str(target), "model": str(tiny_model_dir), "batch_size": 2}
    result = compute_scores(data, "rds", options)
    _, columns = read_scores(result.path)
    sims = columns["rds_sim"]
    assert sims.shape == (5, 2)

    def weighted(messages):
        text = conversation_text(messages, "tulu", tokenizer.eos_token)
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0].double()
        w = torch.arange(1, hidden.shape[0] + 1, dtype=torch.float64)
        v = ((w[:, None] * hidden).sum(0) / w.sum()).numpy()
        return v / np.linalg.norm(v)

    import pyarrow.parquet as pq

    pool_msgs = pq.read_table(data / "data.parquet", columns=["messages"]).column("messages").to_pylist()
    targets = [weighted(t) for t in read_targets(target)]
    for i, msgs in enumerate(pool_msgs):
        np.testing.assert_allclose(sims[i], [weighted(msgs) @ t for t in targets], atol=1e-4)
    # the target set's content keys the scores, not its path
    copy = tmp_path / "copy.jsonl"
    copy.write_text(target.read_text())
    assert ScoreStep.make(data, "rds", {**options, "target": str(copy)}).key() == result.key
    copy.write_text('"Tell me about astronomy."\n')
    assert ScoreStep.make(data, "rds", {**options, "target": str(copy)}).key() != result.key


def test_strategy_end_to_end(tmp_path, tiny_model_dir, make_chat_pool):
    from selbench.scoring.base import read_scores
    from selbench.selection.manifest import run_selection

    target = tmp_path / "target.json"
    target.write_text(json.dumps(["Tell me about astronomy.", "How do I grow tomatoes?", "A poem please"]))
    data = make_chat_pool(tmp_path / "pool", 18)
    params = {"target": str(target), "model": str(tiny_model_dir)}
    run = run_selection(data, "rds", 7, tmp_path / "rds.json", params=params)
    ids, columns = read_scores(run.manifest["scores"]["rds"]["path"])
    assert run.manifest["ids"] == [ids[i] for i in replay(columns["rds_sim"], 7)]
    assert run.manifest["info"] == {"n_targets": 3}
    assert STRATEGIES.get("rds") is RdsStrategy
    pool = Pool(n=18, scores={"rds": columns})
    assert RdsStrategy(**params).select(pool, 7, np.random.default_rng(0)).indices.tolist() == replay(columns["rds_sim"], 7)


def test_strategy_checks_its_target_at_once(tmp_path):
    with pytest.raises(InputError) as info:
        RdsStrategy(target=str(tmp_path / "missing.jsonl"), model="x")
    assert info.value.field == "target"

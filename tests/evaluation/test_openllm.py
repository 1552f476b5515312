"""OpenLLM tasks through lm-eval: settings, a tiny local task checked against our own log-likelihoods, caching."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from selbench.errors import InputError
from selbench.evaluation.base import read_items
from selbench.evaluation.openllm import (
    SETTINGS,
    build_lm,
    cache_config,
    cache_inputs,
    evaluate,
    leaf_tasks,
    parse_tasks,
    run_task,
    subtask_mean,
    task_manager,
)
from selbench.store import step_key

FIXTURES = Path(__file__).parent / "fixtures_openllm"
TASK = "selbench_tiny_arc"


def _rows(split: str) -> list[dict]:
    return [json.loads(line) for line in (FIXTURES / f"{TASK}_{split}.jsonl").read_text().splitlines()]


def test_settings_follow_the_study_script_and_the_leaderboard():
    study, board = SETTINGS["study"], SETTINGS["leaderboard"]
    for task in ("mmlu", "arc_easy", "arc_challenge", "winogrande", "truthfulqa_mc1", "truthfulqa_mc2", "hellaswag"):
        assert study.num_fewshot(task) == 5 and study.metric(task) == "acc"
    assert study.max_length == 1024
    assert {t: board.num_fewshot(t) for t in ("arc_challenge", "hellaswag", "mmlu", "truthfulqa_mc2", "winogrande")} == {
        "arc_challenge": 25, "hellaswag": 10, "mmlu": 5, "truthfulqa_mc2": 0, "winogrande": 5}
    assert board.metric("arc_challenge") == board.metric("hellaswag") == "acc_norm"
    assert board.metric("mmlu") == board.metric("winogrande") == board.metric("truthfulqa_mc2") == "acc"
    assert board.num_fewshot("my_local_task") is None and study.num_fewshot("my_local_task") == 5


# lm-eval 0.4.13's output shape for the `mmlu` group: intermediate groups (`mmlu_stem`) in `group_subtasks`
# and in `results`, their `acc` weighted by subtask size (`_mmlu.yaml`: weight_by_size True).
MMLU_RAW = {
    "group_subtasks": {"mmlu": ["mmlu_stem", "mmlu_humanities"], "mmlu_stem": ["mmlu_anatomy", "mmlu_astronomy"],
                       "mmlu_humanities": ["mmlu_world_religions"]},
    "results": {
        "mmlu_anatomy": {"acc,none": 0.9, "sample_len": 10},
        "mmlu_astronomy": {"acc,none": 0.3, "sample_len": 10},
        "mmlu_world_religions": {"acc,none": 0.5, "sample_len": 30},
        "mmlu_stem": {"acc,none": 0.6}, "mmlu_humanities": {"acc,none": 0.5},
        "mmlu": {"acc,none": 0.54},  # (9 + 3 + 15) / 50
    },
}


def test_leaderboard_mmlu_is_the_unweighted_mean_of_subjects():
    """Open LLM Leaderboard v1 averaged the subject accuracies; lm-eval's group weights them by size."""
    assert leaf_tasks(MMLU_RAW["group_subtasks"], "mmlu") == ["mmlu_anatomy", "mmlu_astronomy", "mmlu_world_religions"]
    value, n_subjects = subtask_mean(MMLU_RAW, "mmlu", "acc")
    # Not lm-eval's 0.54, nor 0.55, the mean of the intermediate groups.
    assert value == pytest.approx((0.9 + 0.3 + 0.5) / 3) and n_subjects == 3
    assert SETTINGS["leaderboard"].aggregation("mmlu") == "subtask_mean"
    assert SETTINGS["study"].aggregation("mmlu") == "lm_eval"  # ChasingRandom read results["mmlu"]["acc,none"]
    assert SETTINGS["leaderboard"].aggregation("arc_easy") == "lm_eval"
    with pytest.raises(KeyError, match="no 'acc'"):
        subtask_mean({**MMLU_RAW, "results": {"mmlu_anatomy": {"acc,none": 0.9}}}, "mmlu", "acc")


def _local_mmlu(folder: Path) -> Path:
    """A two-subject group named `mmlu` (4 and 1 questions, one under an intermediate group) from the tiny ARC rows."""
    folder.mkdir()
    rows = _rows("test")
    (folder / "four.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "one.jsonl").write_text(json.dumps(rows[0]) + "\n")
    task = (FIXTURES / f"{TASK}.yaml").read_text()
    for name, data in (("mmlu_a", "four"), ("mmlu_b", "one")):
        text = task.replace(f"task: {TASK}", f"task: {name}").replace(f"{TASK}_test.jsonl", str(folder / f"{data}.jsonl"))
        (folder / f"{name}.yaml").write_text(text.replace(f"{TASK}_train.jsonl", str(FIXTURES / f"{TASK}_train.jsonl")))
    agg = "aggregate_metric_list:\n  - metric: acc\n    weight_by_size: True\n"
    (folder / "_mmlu_stem.yaml").write_text("group: mmlu_stem\ntask: [mmlu_a]\n" + agg)
    (folder / "_mmlu.yaml").write_text("group: mmlu\ntask: [mmlu_stem, mmlu_b]\n" + agg)
    return folder


def test_evaluate_reports_mmlu_per_setting_through_lm_eval(tiny_model_dir, tmp_path):
    tasks = _local_mmlu(tmp_path / "tasks")
    board = evaluate(str(tiny_model_dir), "mmlu", setting="leaderboard", include_path=tasks, batch_size=4)
    study = evaluate(str(tiny_model_dir), "mmlu", setting="study", include_path=tasks, batch_size=4)

    def subjects(result):
        saved = json.loads((Path(result["details"]["mmlu"]["path"]) / "results.json").read_text())
        return [saved["results"][t]["acc,none"] for t in ("mmlu_a", "mmlu_b")]

    a, b = subjects(board)
    assert board["mmlu"] == pytest.approx((a + b) / 2)
    # Per-document items cover every subject; their subject means are the subjects' accuracies.
    items = read_items(board["details"]["mmlu"]["path"])
    assert [row["item"] for row in items] == [f"mmlu_a/{i}" for i in range(4)] + ["mmlu_b/0"]
    assert np.mean([row["score"] for row in items[:4]]) == pytest.approx(a) and items[4]["score"] == b
    assert board["details"]["mmlu"]["aggregation"] == "subtask_mean" and board["details"]["mmlu"]["n_subtasks"] == 2
    assert board["details"]["mmlu"]["n"] == 5
    a, b = subjects(study)
    assert study["mmlu"] == study["details"]["mmlu"]["metrics"]["acc,none"]
    assert study["mmlu"] == pytest.approx((4 * a + 1 * b) / 5)  # lm-eval weights the subjects by size
    assert study["details"]["mmlu"]["aggregation"] == "lm_eval"


def test_parse_tasks_expands_aliases_and_rejects_empty():
    assert parse_tasks("truthfulqa, mmlu") == ["truthfulqa_mc1", "truthfulqa_mc2", "mmlu"]
    assert parse_tasks(["arc_easy", "arc_easy"]) == ["arc_easy"]
    with pytest.raises(InputError, match="no task"):
        parse_tasks(" , ")


def _direct_loglik(model, tok, context: str, continuation: str) -> float:
    """log p(continuation | context), tokenized the way lm-eval's HFLM splits a pair."""
    import torch

    ctx = tok(context, add_special_tokens=False)["input_ids"]
    whole = tok(context + continuation, add_special_tokens=False)["input_ids"]
    cont = whole[len(ctx):]
    ids = torch.tensor([ctx + cont])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return float(sum(logp[len(ctx) - 1 + i, t] for i, t in enumerate(cont)))


def test_lm_eval_matches_a_direct_loglikelihood_computation(tiny_model, monkeypatch):
    monkeypatch.chdir(FIXTURES)  # the task's data_files are relative paths
    model, tok = tiny_model
    manager = task_manager(FIXTURES, [TASK])
    raw = run_task(build_lm(model, tok, batch_size=3, max_length=1024), TASK, num_fewshot=0, limit=None,
                   manager=manager, log_samples=True)
    got = raw["loglikelihoods"][TASK]
    docs = _rows("test")
    assert sorted(got) == list(range(len(docs)))
    acc, acc_norm = [], []
    for i, doc in enumerate(docs):
        context = f"Question: {doc['question']}\nAnswer:"
        lls = np.array([_direct_loglik(model, tok, context, " " + c) for c in doc["choices"]])
        np.testing.assert_allclose(got[i], lls, atol=1e-4)
        gold = doc["choices"].index(doc["answer"])
        acc.append(int(np.argmax(lls)) == gold)
        # lm-eval's acc_norm divides by the choice's length in characters.
        acc_norm.append(int(np.argmax(lls / np.array([len(c) for c in doc["choices"]]))) == gold)
    assert raw["results"][TASK]["acc,none"] == pytest.approx(np.mean(acc))
    assert raw["results"][TASK]["acc_norm,none"] == pytest.approx(np.mean(acc_norm))


def test_cli_study_setting_on_tiny_model_then_cached(tiny_model_dir, monkeypatch):
    from selbench.cli.main import app

    monkeypatch.chdir(FIXTURES)
    args = ["eval", "openllm", "--model", str(tiny_model_dir), "--tasks", TASK, "--include-path", str(FIXTURES),
            "--limit", "3", "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout.strip().splitlines()[-1])
    assert 0.0 <= out[TASK] <= 1.0 and out["setting"] == "study"
    detail = out["details"][TASK]
    assert detail["num_fewshot"] == 5 and detail["metric"] == "acc" and detail["n"] == 3 and not detail["cached"]
    saved = json.loads((Path(detail["path"]) / "results.json").read_text())
    assert saved["n-shot"][TASK] == 5 and saved["results"][TASK]["acc,none"] == out[TASK]
    again = json.loads(CliRunner().invoke(app, args).stdout.strip().splitlines()[-1])
    assert again["details"][TASK]["cached"] and again[TASK] == out[TASK]


def test_unknown_task_or_setting_is_an_input_error(tiny_model, tiny_model_dir):
    from selbench.cli.main import app

    local = task_manager(FIXTURES, [TASK])  # the local index only: the full one takes most of a minute
    with pytest.raises(InputError, match="no_such_task"):
        run_task(build_lm(*tiny_model, batch_size=1, max_length=None), "no_such_task", num_fewshot=0, limit=1,
                 manager=local)
    bad_setting = CliRunner().invoke(app, ["eval", "openllm", "--model", str(tiny_model_dir), "--tasks", TASK,
                                           "--setting", "v2"])
    assert bad_setting.exit_code == 2 and "setting" in bad_setting.output


def test_cache_key_follows_every_input(tmp_path):
    study, board = SETTINGS["study"], SETTINGS["leaderboard"]
    base_cfg = cache_config("arc_easy", study, 10, 8)
    base_in = cache_inputs("model-a", None)
    keys = {step_key("eval:openllm", 1, base_cfg, base_in)}
    for cfg in (cache_config("hellaswag", study, 10, 8), cache_config("arc_easy", board, 10, 8),
                cache_config("arc_easy", study, None, 8), cache_config("arc_easy", study, 10, 4)):
        keys.add(step_key("eval:openllm", 1, cfg, base_in))
    # Same task, shots and metric, different aggregation: a cached lm-eval group value must not be reused.
    unweighted = dataclasses.replace(study, unweighted_groups=frozenset({"arc_easy"}))
    keys.add(step_key("eval:openllm", 1, cache_config("arc_easy", unweighted, 10, 8), base_in))
    keys.add(step_key("eval:openllm", 1, base_cfg, cache_inputs("model-b", None)))
    tasks = tmp_path / "tasks"
    shutil.copytree(FIXTURES, tasks)
    keys.add(step_key("eval:openllm", 1, base_cfg, cache_inputs("model-a", tasks)))
    with (tasks / f"{TASK}_test.jsonl").open("a") as fh:
        fh.write(json.dumps({"question": "Q?", "choices": ["a", "b"], "answer": "a"}) + "\n")
    keys.add(step_key("eval:openllm", 1, base_cfg, cache_inputs("model-a", tasks)))
    assert len(keys) == 9
    assert "lm_eval" in base_cfg  # task definitions change between lm-eval releases


@pytest.mark.slow
def test_smollm2_on_tiny_task(monkeypatch):
    from selbench.cli.main import app

    monkeypatch.chdir(FIXTURES)
    result = CliRunner().invoke(app, ["eval", "openllm", "--model", "smollm2-135m-instruct", "--tasks", TASK,
                                      "--include-path", str(FIXTURES), "--setting", "leaderboard", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["details"][TASK]["n"] == 4 and 0.0 <= out[TASK] <= 1.0

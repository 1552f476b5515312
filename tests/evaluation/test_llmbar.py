"""LLMBar: prompt rendering, the reference's parsing and statistics, the judge on tiny models, caching."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from selbench.errors import InputError
from selbench.evaluation.llmbar import (
    LLMBarConfig,
    answer_logprobs,
    cache_key,
    evaluate,
    greedy_generate,
    llmbar_statistics,
    load_llmbar,
    loaded_model_fingerprint,
    render_prompt_ids,
)
from selbench.evaluation.llmbar_prompts import STRATEGIES
from selbench.evaluation.llmbar_stats import combine_sets


@pytest.mark.parametrize(
    ("strategy", "completion", "expected"),
    [
        ("vanilla_rules", "Output (a)", 1),
        ("vanilla_rules", "Output (b)", 2),
        ("vanilla_rules", "  Output (b) is the better one", 2),
        ("vanilla_rules", "Sure!\nOutput (b)", 2),
        ("vanilla_rules", "Sure!\n Output (a)", 1),
        ("vanilla_rules", "I prefer Output (a)", None),  # not at a line start
        ("vanilla_rules", "Output (b)\nOutput (a)", 1),  # "Output (a)" is tried first, as in the reference
        ("vanilla_rules", "Output (A)", None),
        ("vanilla_rules", "Output a", None),
        ("vanilla", "\n\nOutput (a)", 1),
        ("cot", "Output (a) misses the point. Therefore, Output (b) is better.", 2),
        ("cot", "Therefore, Output (a) is better!", 1),  # the reference's "." matches any character
        ("cot", "Therefore, Output (a) is better", None),
        ("cot", "Output (b)", None),
    ],
)
def test_parse_uses_reference_regexes(strategy, completion, expected):
    assert STRATEGIES[strategy].parse(completion) == expected


def test_statistics_on_hand_computed_arrays():
    labels = [1, 2, 1, 2, 1]
    original = [1, 2, 2, 0, 1]  # correct: T T F F T -> 3/5
    swapped = [1, 1, 2, 0, 0]  # correct: T F F F F -> 1/5
    stats = llmbar_statistics(labels, original, swapped)
    assert stats["accuracy"] == pytest.approx(0.4)  # (3 + 1) / 2 / 5
    assert stats["correct_original"] == pytest.approx(0.6)
    assert stats["correct_swapped"] == pytest.approx(0.2)
    assert stats["correct_both"] == pytest.approx(0.2)
    assert stats["agreement"] == pytest.approx(0.6)  # 1=1, 2≠1, 2=2, 0=0 (two unparsed agree), 1≠0
    assert stats["unparsed"] == 3
    assert stats["n"] == 5


def test_statistics_reject_bad_values():
    with pytest.raises(ValueError, match="labels must be"):
        llmbar_statistics([3], [1], [1])
    with pytest.raises(ValueError, match="equal length"):
        llmbar_statistics([1, 2], [1], [1])


def test_vanilla_rules_prompt_has_the_reference_structure():
    msgs = STRATEGIES["vanilla_rules"].messages("Say {hi}.", "hello", "bye")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert msgs[0]["content"].startswith("You are a helpful assistant in evaluating the quality of the outputs")
    user = msgs[1]["content"]
    assert user.startswith("Select the Output (a) or Output (b) that is better for the given instruction.")
    assert "Here are some rules of the evaluation:\n(1)" in user and "(3) You should avoid any potential bias" in user
    assert "# Instruction:\nSay {hi}.\n\n# Output (a):\nhello\n\n# Output (b):\nbye\n\n# Which is better" in user
    assert user.endswith('Your response should be either "Output (a)" or "Output (b)":')
    no_rules = STRATEGIES["vanilla"].messages("Say {hi}.", "hello", "bye")[1]["content"]
    rules_block = user[user.index("Here are some rules"):user.index("Do NOT provide")]
    assert no_rules == user.replace(rules_block, "")
    metrics = STRATEGIES["metrics_reference"].messages("i", "a", "b", auxiliary_metrics="Q1?",
                                                        auxiliary_reference="R")[1]["content"]
    assert metrics.index("# Questions about Outputs:") < metrics.index("Q1?") < metrics.index("# A reference output")


def test_prompt_goes_into_the_judges_chat_template(tiny_model):
    _, tok = tiny_model
    msgs = STRATEGIES["vanilla"].messages("inst", "A", "B")
    text = tok.decode(render_prompt_ids(tok, msgs))
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant")
    assert "<|im_end|>\n<|im_start|>user\nSelect the Output (a)" in text
    assert text.endswith('"Output (b)":<|im_end|>\n<|im_start|>assistant\n')


def test_config_validation_names_the_field():
    with pytest.raises(InputError, match="subset"):
        LLMBarConfig(subset="hard")
    with pytest.raises(InputError, match="reasons first"):
        LLMBarConfig(strategy="cot", method="logprob")
    with pytest.raises(InputError, match="limit"):
        LLMBarConfig(limit=0)


def test_load_shared_sets(shared_data):
    natural, hashes = load_llmbar("natural", shared_data / "llmbar")
    assert len(natural["Natural"]) == 100 and set(hashes) == {"Natural"}
    adversarial, _ = load_llmbar("adversarial", shared_data / "llmbar")
    assert {k: len(v) for k, v in adversarial.items()} == {"GPTInst": 92, "GPTOut": 47, "Manual": 46, "Neighbor": 134}


def _write_set(folder: Path, labels: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"input": f"say {i}", "output_1": f"{i}", "output_2": f"not {i}", "label": y} for i, y in enumerate(labels)]
    (folder / "dataset.json").write_text(json.dumps(rows))


def test_bad_record_is_one_input_error(tmp_path):
    _write_set(tmp_path / "Natural", [3])
    with pytest.raises(InputError) as err:
        load_llmbar("natural", tmp_path)
    assert err.value.field == "label" and "dataset.json" in str(err.value.path)
    assert err.value.line == 1  # records are numbered from 1, as in every other input


def test_cli_bad_label_names_the_record_numbered_from_1(tmp_path, tiny_model_dir):
    from selbench.cli.main import app

    _write_set(tmp_path / "Natural", [1, 2, 3])
    result = CliRunner().invoke(app, ["eval", "llmbar", "--model", str(tiny_model_dir), "--data-dir", str(tmp_path),
                                      "--method", "logprob"])
    assert result.exit_code == 2
    assert "dataset.json:3: field 'label'" in result.output and "Traceback" not in result.output


def test_multi_set_headline_is_the_mean_of_the_sets_not_the_pooled_rate():
    # Two sets of different sizes: "small" judged perfectly, "large" mostly wrong and partly unparsed.
    small = ([1, 2], [1, 2], [1, 2])
    large = ([1, 1, 2, 2, 1, 2], [1, 2, 1, 0, 2, 1], [2, 2, 1, 0, 1, 1])
    per_set = {"small": llmbar_statistics(*small), "large": llmbar_statistics(*large)}
    assert per_set["small"]["accuracy"] == 1.0 and per_set["large"]["accuracy"] == pytest.approx(2 / 12)
    out = combine_sets(per_set)
    assert out["accuracy"] == pytest.approx((1.0 + 2 / 12) / 2)  # each set weighs the same, as in LLMBar
    assert out["agreement"] == pytest.approx((1.0 + 4 / 6) / 2)
    assert out["kappa_agreement"] == pytest.approx((per_set["small"]["kappa_agreement"]
                                                    + per_set["large"]["kappa_agreement"]) / 2)
    pooled = llmbar_statistics(*(a + b for a, b in zip(small, large, strict=True)))
    assert out["accuracy_pooled"] == pytest.approx(pooled["accuracy"]) == pytest.approx(6 / 16)
    assert out["agreement_pooled"] == pytest.approx(pooled["agreement"]) == pytest.approx(6 / 8)
    assert (out["n"], out["unparsed"]) == (8, 2)  # totals, not means
    # One set (Natural): the headline is that set's own statistics.
    single = combine_sets({"Natural": per_set["large"]})
    assert {k: single[k] for k in per_set["large"]} == pytest.approx(per_set["large"])
    assert single["accuracy_pooled"] == pytest.approx(single["accuracy"])


def test_adversarial_run_reports_the_mean_of_its_sets(tiny_model, tmp_path):
    import selbench.evaluation.llmbar as llmbar
    from selbench.store import ShardProgress, StepStore

    sizes = {"GPTInst": 1, "GPTOut": 2, "Manual": 3, "Neighbor": 4}
    for name, size in sizes.items():
        _write_set(tmp_path / "Adversarial" / name, [1] * size)
    # The tiny judge always picks the same position (0.5 everywhere), so seed the run's saved progress with
    # known judgments: GPTInst right in both orders, every other set wrong in both.
    sets, hashes = load_llmbar("adversarial", tmp_path)
    key = cache_key(LLMBarConfig(subset="adversarial", method="logprob"),
                    llmbar.loaded_model_fingerprint(*tiny_model), hashes)
    judged = [{"label": 1, "choice_original": c, "choice_swapped": c, "set": name}
              for name in sets for c in [1 if name == "GPTInst" else 2] * sizes[name]]
    ShardProgress(StepStore().partial_dir("eval:llmbar", key), len(judged), llmbar.SHARD_SIZE, fmt="json").save(
        0, {"records": judged, "tokens": 0, "seconds": 0.0})
    out = evaluate(tiny_model, "adversarial", method="logprob", data_dir=tmp_path)
    assert out["key"] == key and {k: v["n"] for k, v in out["per_set"].items()} == sizes
    assert out["accuracy"] == pytest.approx(1 / 4) and out["agreement"] == 1.0  # mean of sets (1, 0, 0, 0)
    assert out["accuracy_pooled"] == pytest.approx(1 / 10) and out["agreement_pooled"] == 1.0
    assert (out["n"], out["unparsed"]) == (10, 0)


def test_batched_greedy_generation_matches_one_at_a_time(tiny_model):
    model, tok = tiny_model
    prompts = [STRATEGIES["vanilla"].messages("x" * n, "a", "b") for n in (1, 40, 7)]
    batched, _ = greedy_generate(model, tok, prompts, max_new_tokens=6, batch_size=3)
    single = [greedy_generate(model, tok, [p], max_new_tokens=6, batch_size=1)[0][0] for p in prompts]
    assert batched == single


def test_answer_logprobs_match_a_direct_forward_pass(tiny_model):
    import torch

    model, tok = tiny_model
    prompts = [STRATEGIES["vanilla"].messages(text, "a", "b") for text in ("short", "a much longer instruction " * 5)]
    lp_a, lp_b, _ = answer_logprobs(model, tok, prompts, ("Output (a)", "Output (b)"), batch_size=2)
    ids_a = tok("Output (a)", add_special_tokens=False)["input_ids"]
    ids_b = tok("Output (b)", add_special_tokens=False)["input_ids"]
    k = next(i for i, (x, y) in enumerate(zip(ids_a, ids_b, strict=False)) if x != y)
    for row, p in enumerate(prompts):
        ids = torch.tensor([render_prompt_ids(tok, p) + ids_a[:k]])
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
        assert lp_a[row] == pytest.approx(float(logp[ids_a[k]]), abs=1e-4)
        assert lp_b[row] == pytest.approx(float(logp[ids_b[k]]), abs=1e-4)


@pytest.mark.parametrize("method", ["generate", "logprob"])
def test_cli_end_to_end_on_tiny_model(tiny_model_dir, shared_data, method):
    from selbench.cli.main import app

    result = CliRunner().invoke(app, ["eval", "llmbar", "--model", str(tiny_model_dir), "--subset", "natural",
                                      "--limit", "4", "--method", method, "--data-dir", str(shared_data / "llmbar"),
                                      "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] == 4 and 0.0 <= out["accuracy"] <= 1.0 and 0.0 <= out["agreement"] <= 1.0
    assert out["per_set"]["Natural"]["n"] == 4
    rows = [json.loads(line) for line in (Path(out["path"]) / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 4
    if method == "logprob":
        assert out["unparsed"] == 0 and all(len(r["logprob_original"]) == 2 for r in rows)
    else:
        parsed = sum(r["choice_original"] != 0 for r in rows) + sum(r["choice_swapped"] != 0 for r in rows)
        assert out["unparsed"] == 8 - parsed


def test_cli_bad_subset_exits_2(tiny_model_dir):
    from selbench.cli.main import app

    result = CliRunner().invoke(app, ["eval", "llmbar", "--model", str(tiny_model_dir), "--subset", "hard"])
    assert result.exit_code == 2 and "subset" in result.output


def test_second_run_is_cached_and_key_follows_every_input(tiny_model, shared_data, tmp_path):
    from selbench.assets.tiny import build_tiny_model

    data = shared_data / "llmbar"
    first = evaluate(tiny_model, "natural", method="logprob", limit=2, data_dir=data)
    again = evaluate(tiny_model, "natural", method="logprob", limit=2, data_dir=data)
    assert not first["cached"] and again["cached"] and again["key"] == first["key"]
    assert again["accuracy"] == first["accuracy"]

    config = LLMBarConfig(method="logprob", limit=2)
    fp = loaded_model_fingerprint(*tiny_model)
    _, hashes = load_llmbar("natural", data)
    assert cache_key(config, fp, hashes) == first["key"]
    keys = {cache_key(config, fp, hashes)}
    for field, value in [("subset", "adversarial"), ("strategy", "vanilla"), ("method", "generate"), ("limit", 3),
                         ("batch_size", 4)]:
        keys.add(cache_key(replace(config, **{field: value}), fp, hashes))
    keys.add(cache_key(config, loaded_model_fingerprint(*build_tiny_model(seed=1)), hashes))
    model, tok = tiny_model
    tok_copy = copy.deepcopy(tok)
    tok_copy.chat_template = tok.chat_template.replace("<|im_start|>", "<|im_start|> ")
    keys.add(cache_key(config, loaded_model_fingerprint(model, tok_copy), hashes))
    # A changed data file changes the key.
    edited = tmp_path / "llmbar"
    shutil.copytree(data / "Natural", edited / "Natural")
    (edited / "Natural" / "dataset.json").chmod(0o644)
    rows = json.loads((edited / "Natural" / "dataset.json").read_text())
    rows[0]["label"] = 3 - rows[0]["label"]
    (edited / "Natural" / "dataset.json").write_text(json.dumps(rows))
    keys.add(cache_key(config, fp, load_llmbar("natural", edited)[1]))
    assert len(keys) == 9


def test_weights_change_the_fingerprint(tiny_model):
    import torch

    model, tok = tiny_model
    changed = copy.deepcopy(model)
    with torch.no_grad():
        next(changed.parameters()).view(-1)[0] += 1e-3
    assert loaded_model_fingerprint(changed, tok) != loaded_model_fingerprint(model, tok)


@pytest.mark.slow
def test_smollm2_natural_limit_4(shared_data):
    from selbench.cli.main import app

    result = CliRunner().invoke(app, ["eval", "llmbar", "--model", "smollm2-135m-instruct", "--subset", "natural",
                                      "--limit", "4", "--data-dir", str(shared_data / "llmbar"), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] == 4 and 0 <= out["unparsed"] <= 8 and np.isfinite(out["accuracy"])


def test_debate_explanations_rename_outputs_written_in_the_other_order():
    from selbench.evaluation.llmbar import debate_explanations

    # Original order preferred output 2 ("Output (b)"), swapped order preferred output 1 (shown there as (b)).
    orig, swapped = "Output (a) is vague; Output (b) is better.", "output (a) rambles. Output (b) is better."
    (a1, a2), (b1, b2) = debate_explanations(orig, swapped, 2, 1)
    # Original order: Assistant (a) defends output 1, whose explanation was written in the swapped order.
    assert (a1, a2) == ("output (b) rambles. Output (a) is better.", orig)
    # Swapped order: output 2 is shown first; its explanation was written in the original order.
    assert (b1, b2) == ("Output (b) is vague; Output (a) is better.", swapped)
    with pytest.raises(ValueError, match="no conflict"):
        debate_explanations(orig, swapped, 1, 1)


def test_swap_prompt_places_the_debate_after_the_outputs():
    user = STRATEGIES["swap"].messages("i", "A", "B", explanation_1="E1", explanation_2="E2")[1]["content"]
    assert user.startswith("The two assistants, Assistant (a) and Assistant (b)")
    assert user.index("# Output (b):\nB") < user.index("who thinks Output (a) is better:\nE1") < user.index(
        "who thinks Output (b) is better:\nE2") < user.index("# Which is better")
    assert STRATEGIES["swap"].first_stage == "cot" and STRATEGIES["cot"].max_new_tokens == 300


def test_swap_strategy_runs_on_tiny_model(tiny_model, shared_data):
    out = evaluate(tiny_model, "natural", strategy="swap", limit=1, data_dir=shared_data / "llmbar")
    rows = [json.loads(line) for line in (Path(out["path"]) / "results.jsonl").read_text().splitlines()]
    assert out["n"] == 1 and "first_stage" in rows[0] and "completion_original" in rows[0]["first_stage"]


def test_model_spec_key_follows_the_model_files(tiny_model_dir, shared_data, tmp_path):
    from selbench.assets.tiny import build_tiny_model

    other = tmp_path / "other-tiny"
    build_tiny_model(other, seed=1)
    data = shared_data / "llmbar"
    first = evaluate(str(tiny_model_dir), "natural", method="logprob", limit=1, data_dir=data)
    second = evaluate(str(other), "natural", method="logprob", limit=1, data_dir=data)
    assert first["key"] != second["key"] and not second["cached"]


def test_interrupted_run_resumes_from_saved_shards(tiny_model, shared_data, monkeypatch):
    import selbench.evaluation.llmbar as llmbar
    from selbench.store import ShardProgress, StepStore

    monkeypatch.setattr(llmbar, "SHARD_SIZE", 1)
    data = shared_data / "llmbar"
    sets, hashes = load_llmbar("natural", data)
    config = LLMBarConfig(method="logprob", limit=2)
    key = cache_key(config, llmbar.loaded_model_fingerprint(*tiny_model), hashes)
    # A shard finished before the interruption (marked so we can see it was reused, not recomputed).
    label = sets["Natural"][0]["label"]
    done = {"label": label, "choice_original": label, "choice_swapped": label, "set": "Natural", "marker": True}
    ShardProgress(StepStore().partial_dir("eval:llmbar", key), 2, 1, fmt="json").save(0, {"records": [done]})
    out = evaluate(tiny_model, "natural", method="logprob", limit=2, data_dir=data)
    rows = [json.loads(line) for line in (Path(out["path"]) / "results.jsonl").read_text().splitlines()]
    assert out["key"] == key and rows[0].get("marker") is True and "logprob_original" in rows[1]
    assert not (StepStore().root / "partial" / "eval:llmbar" / key).exists()  # progress dropped once complete


@pytest.fixture
def llmbar_http(shared_data):
    """The shared LLMBar folder served over HTTP on 127.0.0.1 (the layout of the reference repo's
    Dataset/LLMBar/, which is what hf://princeton-nlp/LLMBar's loading script downloads)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shared_data / "llmbar"))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_remote_sets_are_downloaded_once_and_equal_the_local_copy(llmbar_http, shared_data):
    server, url = llmbar_http
    local_sets, local_hashes = load_llmbar("adversarial", shared_data / "llmbar")
    remote_sets, remote_hashes = load_llmbar("adversarial", url)
    assert remote_sets == local_sets and remote_hashes == local_hashes  # same bytes -> same cache keys
    assert [len(remote_sets[n]) for n in ("GPTInst", "GPTOut", "Manual", "Neighbor")] == [92, 47, 46, 134]
    server.shutdown()  # cached: no network needed any more
    again, _ = load_llmbar("adversarial", url)
    assert again == local_sets


def test_remote_set_missing_is_a_one_line_usage_error(llmbar_http, tiny_model_dir):
    from selbench.cli.main import app

    _, url = llmbar_http
    with pytest.raises(InputError, match="cannot download LLMBar data"):
        load_llmbar("natural", url + "no-such-folder/")
    args = ["eval", "llmbar", "--model", str(tiny_model_dir), "--data-dir", url + "nowhere", "--method", "logprob"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "nowhere/Natural/dataset.json" in result.output
    assert "field 'data-dir'" in result.output and "Traceback" not in result.output


def test_cli_reads_llmbar_over_http(llmbar_http, tiny_model_dir, shared_data):
    from selbench.cli.main import app

    _, url = llmbar_http
    base = ["eval", "llmbar", "--model", str(tiny_model_dir), "--method", "logprob", "--limit", "2", "--json"]
    remote = CliRunner().invoke(app, [*base, "--data-dir", url])
    assert remote.exit_code == 0, remote.output
    local = CliRunner().invoke(app, [*base, "--data-dir", str(shared_data / "llmbar")])
    out_remote, out_local = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (remote, local))
    assert out_local["cached"] and out_local["key"] == out_remote["key"]  # the same data, so the same step


def test_hub_name_resolves_to_the_files_its_loading_script_reads(monkeypatch):
    from selbench.evaluation.llmbar import REMOTE_BASE, resolve_data_dir

    assert resolve_data_dir("hf://princeton-nlp/LLMBar") == REMOTE_BASE
    monkeypatch.setenv("SELBENCH_LLMBAR_DIR", "http://127.0.0.1:9/llmbar")
    assert resolve_data_dir() == "http://127.0.0.1:9/llmbar/"


def test_shared_data_is_found_from_any_folder(shared_data, tmp_path, monkeypatch):
    """Issue 10, item 8: the default location did not depend on the working directory's parent."""
    from selbench.evaluation.llmbar import resolve_data_dir

    monkeypatch.delenv("SELBENCH_LLMBAR_DIR", raising=False)
    monkeypatch.setenv("SELBENCH_SHARED_DATA", str(shared_data))
    elsewhere = tmp_path / "some" / "folder"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert resolve_data_dir() == shared_data / "llmbar"


def test_nothing_found_offline_says_where_it_looked(tmp_path, monkeypatch):
    from selbench.evaluation.llmbar import resolve_data_dir

    monkeypatch.delenv("SELBENCH_LLMBAR_DIR", raising=False)
    monkeypatch.setenv("SELBENCH_SHARED_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="LLMBar data not found") as info:
        resolve_data_dir()
    assert str(tmp_path / "empty" / "llmbar") in str(info.value) and "HF_HUB_OFFLINE" in str(info.value)

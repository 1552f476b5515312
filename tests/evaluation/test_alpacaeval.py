"""AlpacaEval: the weighted annotator's prompt, order switch and parser (checked against alpaca_eval itself),
the packaged data, and generate -> judge -> win rate / head-to-head end to end on 127.0.0.1."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from selbench.errors import InputError
from selbench.evaluation import alpacaeval
from selbench.generation.server import BackgroundServer, create_app
from selbench.llm.client import LLMClient, LLMConfig, ResponseParseError


def _lp(**probs: float) -> list[dict]:
    return [{"token": t.replace("_", " "), "logprob": math.log(p)} for t, p in probs.items()]


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        (_lp(M=0.9), 2.0),  # "m" absent: probability 0
        (_lp(m=0.9, Both=0.05), 1.0),
        (_lp(m=0.3, M=0.3, The=0.2), 1.5),
        (_lp(M=0.6, m=0.2, _M=0.1), 1.75),  # " M" (with a space) is another token, ignored
    ],
)
def test_weighted_preference_from_top_logprobs(top, expected):
    response = {
        "choices": [
            {
                "logprobs": {
                    "content": [{"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}]
                }
            }
        ]
    }
    assert alpacaeval.parse_weighted_preference(response) == pytest.approx(expected)


def test_weighted_preference_unparseable():
    with pytest.raises(ResponseParseError):
        alpacaeval.preference_from_top_logprobs(_lp(Both=0.5, _m=0.2))
    with pytest.raises(ResponseParseError):
        alpacaeval.parse_weighted_preference({"choices": [{"message": {"content": "m"}, "logprobs": None}]})


def test_judge_prompt_and_order_switch_match_alpaca_eval():
    import pandas as pd
    from alpaca_eval.processors import RandomSwitchTwoColumnsProcessor
    from alpaca_eval.utils import make_prompts, prompt_to_chatml

    rows = pd.DataFrame(
        [
            dict(
                instruction=f"Write {i} words about {{output_1}} braces.",
                output_1=f"ref {i}",
                output_2=f"model {i}",
            )
            for i in range(12)
        ]
    )
    template = alpacaeval.judge_template()
    prompts, _ = make_prompts(rows, template)
    for prompt, (_, row) in zip(prompts, rows.iterrows(), strict=True):
        assert alpacaeval.judge_messages(
            template, row.instruction, row.output_1, row.output_2
        ) == prompt_to_chatml(prompt)
    # the switch processor as alpaca_eval's own pipeline builds it (seed passed down from the annotator)
    from alpaca_eval.annotators import PairwiseAnnotator

    annotator = PairwiseAnnotator(annotators_config="weighted_alpaca_eval_gpt4_turbo")
    (single,) = annotator.annotators.values()
    (processor,) = [p for p in single.processors if isinstance(p, RandomSwitchTwoColumnsProcessor)]
    expected = processor.preprocess(rows)["is_switched_outputs"].tolist()
    assert [alpacaeval.is_switched(x) for x in rows.instruction] == expected
    assert 0 < sum(expected) < len(expected)


def test_order_switch_and_parser_reproduce_the_official_annotations(shared_data):
    """Each official preference is our parse of its stored judge completion, mapped back where our switch
    says the pair was shown swapped; pairs with identical outputs were never judged and are 1.5."""
    import ast

    rows = json.loads((shared_data / "alpaca_eval" / "annotations" / "claude-2.json").read_text())
    checked = 0
    for row in rows:
        pref = float(row["preference"])
        if row["output_1"] == row["output_2"]:
            assert pref == 1.5 and not row.get("raw_completion")
            continue
        raw = row.get("raw_completion")
        if not raw:
            continue
        completion = ast.literal_eval(raw) if isinstance(raw, str) else raw
        top = completion["logprobs"]["content"][0]["top_logprobs"]
        shown = alpacaeval.preference_from_top_logprobs(top)
        ours = 3 - shown if alpacaeval.is_switched(row["instruction"]) else shown
        assert ours == pytest.approx(pref, abs=1e-6), row["instruction"][:60]
        checked += 1
    assert checked >= 800


def test_identical_outputs_are_a_draw_without_a_judge_call(judge_server):
    app, server = judge_server
    client = LLMClient(LLMConfig(model="tiny-judge", base_url=server.base_url))
    before = app.state.counts.get("chat", 0)
    prefs = alpacaeval.annotate_pairs(client, ["a", "b", "c"], ["same", "x", "same"], ["same", "y", "same"])
    assert prefs[0] == prefs[2] == 1.5 and prefs[1] is not None
    assert client.stats.requests == 1 and app.state.counts["chat"] - before == 1


def test_reference_data_and_study_subset(shared_data):
    rows = alpacaeval.load_reference()
    assert len(rows) == 805 and rows[804]["index"] == 804
    official = json.loads(
        (shared_data / "alpaca_eval" / "model_outputs" / "gpt4_1106_preview.json").read_text()
    )
    assert [r["instruction"] for r in rows] == [r["instruction"] for r in official]
    assert [r["output"] for r in rows] == [r["output"] for r in official]
    subset = alpacaeval.load_reference("study300")
    indices = [r["index"] for r in subset]
    assert len(set(indices)) == 300 and indices == sorted(indices)
    assert [r["index"] for r in alpacaeval.load_reference("study300", limit=5)] == indices[:5]
    with pytest.raises(InputError, match="subset"):
        alpacaeval.load_reference("study301")


def test_subset_file_names_instructions_by_text_index_or_record(tmp_path):
    from selbench.cli.main import app

    rows = alpacaeval.load_reference()
    path = tmp_path / "subset.json"
    path.write_text(json.dumps([rows[7]["instruction"], 3, {"instruction": rows[500]["instruction"], "output": "x"}]))
    assert [r["index"] for r in alpacaeval.load_reference(str(path))] == [7, 3, 500]  # file order kept
    assert [r["index"] for r in alpacaeval.load_reference(str(path), limit=2)] == [7, 3]
    for bad, field in ([[1, "Not an AlpacaEval instruction."], "instruction"], [[1, 805], "index"],
                       [[4, 4], "instruction"], [[1, None], "instruction"]):
        path.write_text(json.dumps(bad))
        with pytest.raises(InputError) as err:
            alpacaeval.load_reference(str(path))
        assert (err.value.line, err.value.field) == (2, field)
    result = CliRunner().invoke(app, ["eval", "alpacaeval", "--model", "m", "--judge", "j", "--subset", str(path)])
    assert result.exit_code == 2 and f"{path}:2: field 'instruction'" in result.output


@pytest.fixture(scope="module")
def judge_server(tmp_path_factory):
    """A tiny judge whose next-token logits put "m" or "M" (and only one of them) in the top 5.

    All output rows are zero except "m" (+50 x h0) and "M" (-50 x h0), where h0 is the first coordinate of
    the normalised last hidden state, so the verdict is a real function of the prompt.
    """
    import torch

    from selbench.assets.tiny import build_tiny_model

    model, tok = build_tiny_model(seed=3)
    with torch.no_grad():
        model.lm_head.weight = torch.nn.Parameter(torch.zeros_like(model.lm_head.weight))
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        model.lm_head.weight[tok.convert_tokens_to_ids("m"), 0] = 50.0
        model.lm_head.weight[tok.convert_tokens_to_ids("M"), 0] = -50.0
    app = create_app(model.eval(), tok, "tiny-judge")
    with BackgroundServer(app) as server:
        yield app, server


@pytest.fixture(scope="module")
def second_tiny_model_dir(tmp_path_factory):
    from selbench.assets.tiny import build_tiny_model

    out = tmp_path_factory.mktemp("tiny-model-b")
    build_tiny_model(out, seed=1)
    return out


def test_annotate_pairs_maps_switched_verdicts_back(judge_server):
    _, server = judge_server
    client = LLMClient(LLMConfig(model="tiny-judge", base_url=server.base_url))
    instructions = [f"Say something about topic {i}." for i in range(6)]
    a = [f"answer a{i}" for i in range(6)]
    b = [f"a much longer answer b{i} with more words" for i in range(6)]
    prefs = alpacaeval.annotate_pairs(client, instructions, a, b)
    assert all(p is not None and 1.0 <= p <= 2.0 for p in prefs)
    # Same pairs, outputs given the other way round and no random switch: what the judge saw for the
    # switched rows is exactly what it sees now, so those verdicts agree (mapped back with 3 - x).
    flipped = alpacaeval.annotate_pairs(client, instructions, b, a, randomize_order=False)
    for x, p, q in zip(instructions, prefs, flipped, strict=True):
        if alpacaeval.is_switched(x):
            assert p == pytest.approx(3 - q)


def test_head_to_head_between_tiny_models_end_to_end(
    judge_server, tiny_model_dir, second_tiny_model_dir, tmp_path
):
    from selbench.cli.main import app

    app_state, server = judge_server
    outputs = tmp_path / "random_s2.json"
    rows = alpacaeval.load_reference(limit=3)
    outputs.write_text(
        json.dumps(
            [{"instruction": r["instruction"], "output": "Short.", "generator": "random_s2"} for r in rows]
        )
    )
    args = [
        "eval",
        "head-to-head",
        "--model",
        str(tiny_model_dir),
        "--random",
        str(second_tiny_model_dir),
        "--random",
        str(outputs),
        "--judge",
        "tiny-judge",
        "--judge-base-url",
        server.base_url,
        "--limit",
        "3",
        "--max-new-tokens",
        "4",
        "--json",
    ]
    before = app_state.state.counts["chat"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] + out["unparsed"] == 3 and out["n"] >= 1
    assert 0.0 <= out["win_rate"] <= 100.0
    assert out["mean_adjusted_win_rate"] == pytest.approx(out["win_rate"] - 50)
    assert set(out["per_seed"]) == {str(second_tiny_model_dir), "random_s2"}
    assert sum(s["n"] for s in out["per_seed"].values()) == out["n"]
    assert app_state.state.counts["chat"] == before + 6  # both orders per instruction
    assert out["judge"]["requests"] == 6
    # A rerun is free: every verdict comes from the cache.
    again = json.loads(CliRunner().invoke(app, args).stdout.strip().splitlines()[-1])
    assert again["win_rate"] == out["win_rate"] and app_state.state.counts["chat"] == before + 6
    # Every random model on every instruction: up to 2 models x 3 instructions x 2 orders on top of the 6
    # pairs already judged (those are cached); pairs with identical outputs (two tiny models can both say
    # nothing) are draws that are never sent.
    full = json.loads(CliRunner().invoke(app, [*args, "--full-per-seed"]).stdout.strip().splitlines()[-1])
    assert set(full["per_seed_full"]) == set(out["per_seed"])
    assert 6 < full["judge"]["requests"] <= 6 + 12
    assert app_state.state.counts["chat"] == before + 6 + full["judge"]["http_requests"]
    assert full["judge"]["http_requests"] <= 6
    for name, stats in out["per_seed"].items():
        if stats["n"] == 3:  # this model was every instruction's opponent: same pairs, same verdicts
            assert full["per_seed_full"][name]["win_rate"] == pytest.approx(stats["win_rate"])


def test_alpacaeval_command_writes_annotations(judge_server, tiny_model_dir, tmp_path):
    from selbench.cli.main import app

    _, server = judge_server
    ann = tmp_path / "annotations.json"
    args = [
        "eval",
        "alpacaeval",
        "--model",
        str(tiny_model_dir),
        "--baseline",
        "gpt4_1106_preview",
        "--judge",
        "tiny-judge",
        "--judge-base-url",
        server.base_url,
        "--limit",
        "3",
        "--max-new-tokens",
        "4",
        "--annotations-out",
        str(ann),
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] + out["unparsed"] == 3 and out["lc_win_rate"] is None  # too few instructions for the GLM
    records = json.loads(ann.read_text())
    assert [r["generator_1"] for r in records] == ["gpt4_1106_preview"] * 3
    assert all(set(r) >= {"instruction", "output_1", "output_2", "preference"} for r in records)
    # what lc-winrate reads back gives the same win rate
    prefs = [r["preference"] for r in records if r["preference"] is not None]
    assert out["win_rate"] == pytest.approx((sum(prefs) / len(prefs) - 1) * 100)


@pytest.mark.slow
def test_head_to_head_judged_by_smollm2_served_locally(tmp_path):
    from selbench.assets import load_model
    from selbench.cli.main import app

    model, tok = load_model("smollm2-135m-instruct")
    rows = alpacaeval.load_reference(limit=2)
    for name, text in (("r0", "I don't know."), ("r1", "Sure.")):
        (tmp_path / f"{name}.json").write_text(
            json.dumps([{"instruction": r["instruction"], "output": text, "generator": name} for r in rows])
        )
    with BackgroundServer(create_app(model, tok, "smollm2")) as server:
        result = CliRunner().invoke(
            app,
            [
                "eval",
                "head-to-head",
                "--model",
                "smollm2-135m-instruct",
                "--random",
                str(tmp_path / "r0.json"),
                "--random",
                str(tmp_path / "r1.json"),
                "--judge",
                "smollm2",
                "--judge-base-url",
                server.base_url,
                "--limit",
                "2",
                "--max-new-tokens",
                "16",
                "--json",
            ],
        )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["n"] + out["unparsed"] == 2


def test_alpacaeval_on_a_limit_gets_lc_offline_from_other_models_annotations(judge_server, shared_data):
    """--limit K offline: LC needs a difficulty; estimated from --difficulty-from files, else null."""
    from selbench.cli.main import app

    _, server = judge_server
    outputs = shared_data / "alpaca_eval" / "model_outputs" / "vicuna-7b-v1.5.json"
    base = ["eval", "alpacaeval", "--model", str(outputs), "--judge", "tiny-judge"]
    base += ["--judge-base-url", server.base_url, "--limit", "30", "--json"]
    plain = CliRunner().invoke(app, base)
    assert plain.exit_code == 0, plain.output
    out = json.loads(plain.stdout.strip().splitlines()[-1])
    assert (
        out["n"] + out["unparsed"] == 30 and out["lc_win_rate"] is None and out["difficulty_source"] is None
    )

    folder = shared_data / "alpaca_eval" / "annotations"
    result = CliRunner().invoke(app, [*base, "--difficulty-from", str(folder)])
    assert result.exit_code == 0, result.output
    lc = json.loads(result.stdout.strip().splitlines()[-1])
    assert lc["win_rate"] == out["win_rate"]  # same verdicts (judge cache), LC added
    assert lc["difficulty_source"] == "estimate" and lc["glm"] == "length_controlled_noreg"
    assert 0.0 <= lc["lc_win_rate"] <= 100.0


def test_bad_options_fail_before_any_work_and_leave_no_annotations(judge_server, shared_data, tmp_path):
    """Review findings: late validation and partial output. Each case exits 2 naming its flag, before judging."""
    from selbench.cli.main import app

    app_state, server = judge_server
    outputs = shared_data / "alpaca_eval" / "model_outputs" / "vicuna-7b-v1.5.json"
    ann = tmp_path / "ann.json"
    base = ["eval", "alpacaeval", "--model", str(outputs), "--judge", "tiny-judge", "--judge-base-url",
            server.base_url, "--limit", "12", "--annotations-out", str(ann)]
    before = app_state.state.counts["chat"]
    cases = [
        (["--difficulty", str(tmp_path / "missing.csv")], "missing.csv"),
        (["--difficulty-from", str(tmp_path / "nowhere")], "field 'difficulty-from'"),
        (["--judge-workers", "0"], "field 'judge-workers'"),
        (["--judge-base-url", "ftp://x"], "field 'judge-base-url'"),
        (["--annotator", "gpt5_oracle"], "field 'annotator'"),
        (["--difficulty", "estimate"], "field 'difficulty-from'"),  # nothing to estimate from
        (["--difficulty-from", str(tmp_path)], "field 'difficulty-from'"),  # a folder without annotation files
        (["--judge", ""], "field 'judge'"),
    ]
    for extra, expected in cases:
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 2 and expected in result.output, (extra, result.output)
    (tmp_path / "file").write_text("")
    result = CliRunner().invoke(app, [*base, "--annotations-out", str(tmp_path / "file" / "ann.json")])
    assert result.exit_code == 2 and "field 'annotations-out'" in result.output
    missing = CliRunner().invoke(app, [*base[:3], str(tmp_path / "gone.json"), *base[4:]])
    assert missing.exit_code == 2 and "outputs file not found" in missing.output
    assert app_state.state.counts["chat"] == before and not ann.exists()  # nothing judged, nothing written
    h2h = ["eval", "head-to-head", "--model", str(outputs), "--random", str(outputs), "--judge", "tiny-judge",
           "--judge-base-url", server.base_url, "--limit", "2"]
    for extra, field in ((["--seed", "-1"], "seed"), (["--protocol", "sometimes"], "protocol"),
                         (["--annotator", "gpt5_oracle"], "annotator")):
        result = CliRunner().invoke(app, [*h2h, *extra])
        assert result.exit_code == 2 and f"field '{field}'" in result.output, result.output


def test_head_to_head_study_protocol_judges_once_with_the_switch(judge_server, shared_data):
    app_state, server = judge_server
    rows = alpacaeval.load_reference(limit=6)
    instructions = [r["instruction"] for r in rows]
    outputs = json.loads((shared_data / "alpaca_eval" / "model_outputs" / "vicuna-7b-v1.5.json").read_text())
    by_text = {o["instruction"]: o["output"] for o in outputs}
    selected = [by_text[x] for x in instructions]
    randoms = {"s0": [r["output"] for r in rows]}
    client = LLMClient(LLMConfig(model="tiny-judge", base_url=server.base_url))
    study = alpacaeval.head_to_head(instructions, selected, randoms, client, protocol="study")
    assert study["protocol"] == "study" and client.stats.requests == 6  # once per instruction
    # the same verdicts as the plain AlpacaEval annotation with the random output as the reference
    plain = alpacaeval.annotate_pairs(client, instructions, randoms["s0"], selected)
    assert study["preferences"] == plain
    both = alpacaeval.head_to_head(instructions, selected, randoms, client, protocol="both")
    assert both["protocol"] == "both" and client.stats.requests == 6 + 6 + 12


def test_fn_annotator_request_and_ranking_parse_follow_alpaca_eval():
    """The study's `alpaca_eval_gpt4_turbo_fn`: prompt and request from the installed alpaca_eval config; the
    verdict is the rank of model "m" in the function call (alpaca_eval's json_parser + ranking_parser)."""
    params = alpacaeval.judge_params(alpacaeval.FN_ANNOTATOR)
    assert params["temperature"] == 0 and params["max_tokens"] == 100 and "model_name" not in params
    assert params["tool_choice"]["function"]["name"] == "make_partial_leaderboard"
    assert "make_partial_leaderboard" in json.dumps(params["tools"])
    assert "make_partial_leaderboard" in alpacaeval.judge_template(alpacaeval.FN_ANNOTATOR)

    def call(arguments, content=None):
        calls = [{"function": {"name": "make_partial_leaderboard", "arguments": arguments}}] if arguments else None
        return {"choices": [{"message": {"content": content, "tool_calls": calls}}]}

    ranked = '{"ordered_models": [{"model": "M", "rank": 1}, {"model": "m", "rank": 2}]}'
    assert alpacaeval.parse_fn_ranking(call(ranked)) == 2.0
    assert alpacaeval.parse_fn_ranking(call(None, ranked.replace('"rank": 2', '"rank": 1'))) == 1.0
    for bad in ('{"ordered_models": [{"model": "m", "rank": 3}]}', '{"other": 1}', "not json"):
        with pytest.raises(ResponseParseError):
            alpacaeval.parse_fn_ranking(call(bad))


def test_fn_annotator_end_to_end_against_a_local_server(tiny_model_dir):
    """Real tool calls over HTTP: a local model scripted to rank "m" first; the switch maps verdicts back."""
    from scripted_model import ScriptedOutput
    from selbench.assets import load_model

    model, tok = load_model(str(tiny_model_dir))
    scripted = ScriptedOutput(model, tok, '{"ordered_models": [{"model": "m", "rank": 1}, {"model": "M", "rank": 2}]}')
    rows = alpacaeval.load_reference(limit=8)
    instructions = [r["instruction"] for r in rows]
    try:
        with BackgroundServer(create_app(model, tok, "scripted")) as server:
            client = LLMClient(LLMConfig(model="scripted", base_url=server.base_url))
            prefs = alpacaeval.annotate_pairs(
                client, instructions, [r["output"] for r in rows], ["x"] * 8, annotator=alpacaeval.FN_ANNOTATOR
            )
    finally:
        scripted.remove()
    # "m" is whatever was shown first: output_1 unless alpaca_eval's switch swapped the pair
    assert prefs == [2.0 if alpacaeval.is_switched(x) else 1.0 for x in instructions]
    assert 0 < sum(p == 2.0 for p in prefs) < 8 and client.stats.parse_failures == 0

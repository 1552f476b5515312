"""AlpaGasus ratings end to end: the authors' and the study's prompts, parsing, and `selbench score|select
alpagasus` against `selbench serve` and against a faulty judge of the test's own on 127.0.0.1 (429 with
Retry-After, 500, a timeout, a dropped connection, unparseable answers), counting requests server-side."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from faulty_judge import FaultyJudge
from selbench.cli.main import app
from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.errors import InputError
from selbench.scoring.alpagasus import AlpagasusScorer, parse_rating, rated_indices, rating_messages
from selbench.scoring.base import compute_scores, read_scores
from selbench.store import StepStore

SECRET = "sk-fake-ALPAGASUS-KEY-9876543210"
# What the faulty judge answers for example i (the instruction carries i): ratings, then replies that have
# no rating on the 0-5 scale.
REPLIES = ["5", "4.5\nThe response is accurate.", "I cannot rate this.", "3", "4", "7 out of 10", "4.5", "Score: 2"]
EXPECTED = [5.0, 4.5, math.nan, 3.0, 4.0, math.nan, 4.5, 2.0]


def _pool(folder: Path, n: int = len(REPLIES)) -> Path:
    examples = [Example(instruction=f"Task number {i}.", input="some input" if i % 2 else "", output=f"Answer {i}.")
                for i in range(n)]
    folder.mkdir(parents=True, exist_ok=True)
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": n}))
    return folder


def _reply(messages: list[dict]) -> str:
    i = int(re.search(r"Task number (\d+)\.", messages[-1]["content"]).group(1))
    return REPLIES[i]


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_alpagasus_prompt_is_the_authors():
    system, user = rating_messages("alpagasus", "Add the numbers.", "2 and 3", "5")
    assert system == {"role": "system", "content": (
        "We would like to request your feedback on the performance of AI assistant in response to the "
        "instruction and the given input displayed following.")}
    assert user["role"] == "user" and user["content"] == (
        "###Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:\n5\n\n"
        "Please rate according to the accuracy of the response to the instruction and the input. Each assistant "
        "receives a score on a scale of 0 to 5, where a higher score indicates higher level of the accuracy. "
        "Please first output a single line containing value indicating the scores. In the subsequent line, "
        "please provide a comprehensive explanation of your evaluation, avoiding any potential bias. \n\n")
    assert AlpagasusScorer(judge="j").request_params() == {"temperature": 0.0, "max_tokens": 256, "top_p": 1.0}


def test_study_prompt_is_chasing_randoms():
    system, user = rating_messages("study", "Add the numbers.", "2 and 3", "{output} stays literal")
    assert system["content"].endswith("displayed following. \n\n")
    assert user["content"] == (
        "Instruction: Add the numbers.2 and 3 \n Response: {output} stays literal\n"
        "Please rate the given instruction and response tuple according to the accuracy of the response. Each "
        "response receives a score on a scale of 0 to 5, where a higher score indicates higher level of the "
        "accuracy. Please first output a single line containing the value indicating the scores. In the "
        "subsequent line, please provide a comprehensive explanation of your evaluation, avoiding any potential "
        "bias.")
    scorer = AlpagasusScorer(judge="gpt-4o", preset="study")
    assert scorer.request_params() == {"max_tokens": 3} and scorer.effective_pool_size == 40_000


@pytest.mark.parametrize("reply, rating", [
    ("4", 4.0), ("4.5", 4.5), ("5\n\nExplanation: 3 facts", 5.0), ("Score: 3.5", 3.5), ("0", 0.0),
    ("Rating: 4/5", 4.0), ("4.", 4.0),
])
def test_rating_is_the_first_number_on_the_scale(reply, rating):
    assert parse_rating(reply) == rating


def test_the_study_pool_is_its_samplers_shuffle():
    assert rated_indices(10, 4, 42).tolist() == sorted(np.random.default_rng(42).permutation(10)[:4].tolist())
    assert rated_indices(3, 40_000, 42) is None  # a pool smaller than 40,000: every example


def test_bad_options_name_their_flag():
    for kwargs, flag in (({"preset": "gpt"}, "preset"), ({"judge_workers": 0}, "judge-workers"),
                         ({"pool_size": 0}, "pool-size"), ({"judge_base_url": "file:///x"}, "judge-base-url"),
                         ({"judge": ""}, "judge")):
        with pytest.raises(InputError) as err:
            AlpagasusScorer(**{"judge": "j", **kwargs})
        assert err.value.field == flag


def test_faulty_judge_retries_counts_unparsed_caches_and_keeps_the_key_off_disk(tmp_path, isolated_cache,
                                                                                monkeypatch):
    """The faulty-judge test: every fault is retried, unparseable replies are NaN and counted, the second run
    and every budget ask nothing, and the key is sent as the bearer token and written nowhere."""
    monkeypatch.setenv("FAKE_JUDGE_KEY", SECRET)
    data = _pool(tmp_path / "pool")
    faults = ["429", "500", "timeout", "close", "503"]
    with FaultyJudge(faults, answer=_reply, retry_after="1", slow_s=3.0) as judge:
        common = ["--data", str(data), "--judge", "faulty", "--judge-base-url", judge.base_url,
                  "--judge-api-key-env", "FAKE_JUDGE_KEY", "--judge-timeout", "0.5", "--judge-workers", "2"]
        out = tmp_path / "scores.parquet"
        result = CliRunner().invoke(app, ["score", "alpagasus", *common, "--out", str(out), "--json"])
        first = _json(result)
        assert judge.chat_requests == len(REPLIES) + len(faults)
        assert first["n"] == first["requests"] == len(REPLIES) and not first["cached"]
        assert first["unparsed"] == 2 and first["rated"] == 6 and first["rejected"] == 0
        assert first["judge"]["http_requests"] == len(REPLIES) + len(faults)
        assert first["judge"]["retries"] == len(faults) and first["tokens"] > 0
        ids, columns = read_scores(out)
        np.testing.assert_array_equal(columns["score"], np.array(EXPECTED))
        assert columns["status"].tolist() == [0.0 if math.isnan(e) else 1.0 for e in EXPECTED]

        again = _json(CliRunner().invoke(app, ["score", "alpagasus", *common, "--out", str(out), "--json"]))
        assert again["cached"] and again["cost_usd"] == 0.0
        assert judge.chat_requests == len(REPLIES) + len(faults)
        # two budgets and a threshold: the ratings are reused, the judge is not asked again
        sel = {}
        for name, extra in (("b3", ["--budget", "3"]), ("b5", ["--budget", "5"]), ("t45", ["--threshold", "4.5"])):
            path = tmp_path / f"{name}.json"
            sel[name] = _json(CliRunner().invoke(app, ["select", "alpagasus", *common, *extra, "--out", str(path),
                                                       "--json"]))
            sel[name]["ids"] = json.loads(path.read_text())["ids"]
        assert judge.chat_requests == len(REPLIES) + len(faults)
        assert judge.auth and set(judge.auth) == {f"Bearer {SECRET}"}
    by_id = dict(zip(ids, EXPECTED, strict=True))
    assert [by_id[i] for i in sel["b3"]["ids"]] == [5.0, 4.5, 4.5]
    assert [by_id[i] for i in sel["b5"]["ids"]] == [5.0, 4.5, 4.5, 4.0, 3.0]
    assert sel["t45"]["n_selected"] == 3 and set(sel["t45"]["ids"]) == set(sel["b3"]["ids"])
    # The key is nowhere on disk (cache, scores, manifests) nor in any output.
    written = [f for f in [*isolated_cache.rglob("*"), *tmp_path.rglob("*")] if f.is_file()]
    assert any(f.suffix == ".json" and "llm-requests" in str(f) for f in written)
    assert not any(SECRET.encode() in f.read_bytes() for f in written)
    assert SECRET not in json.dumps([first, again, sel])


def test_ties_follow_the_seeded_shuffle_and_thresholds_yield_their_count(tmp_path):
    data = _pool(tmp_path / "pool", 12)
    with FaultyJudge(answer=lambda messages: "4") as judge:  # every example ties at 4
        common = ["--data", str(data), "--judge", "faulty", "--judge-base-url", judge.base_url]
        picks = {}
        for seed in (0, 42, 42):
            path = tmp_path / f"s{seed}.json"
            _json(CliRunner().invoke(app, ["select", "alpagasus", *common, "--budget", "4", "--seed", str(seed),
                                           "--out", str(path), "--json"]))
            picks.setdefault(seed, []).append(json.loads(path.read_text())["ids"])
        assert picks[42][0] == picks[42][1] != picks[0][0]
        assert json.loads((tmp_path / "s0.json").read_text())["info"]["rated"] == 12
        none = CliRunner().invoke(app, ["select", "alpagasus", *common, "--threshold", "4.5",
                                        "--out", str(tmp_path / "none.json")])
        assert none.exit_code == 2 and "field 'threshold'" in none.output and not (tmp_path / "none.json").exists()
        assert judge.chat_requests == 12  # one rating per example, whatever was selected afterwards
    import pyarrow.parquet as pq

    pool_ids = pq.read_table(data / "data.parquet", columns=["id"]).column("id").to_pylist()
    perm = np.random.default_rng(42).permutation(12)
    assert picks[42][0] == [pool_ids[i] for i in perm[:4]]  # the study: a stable sort of its shuffled pool


def test_study_preset_rates_only_its_shuffled_pool(tmp_path, monkeypatch):
    import selbench.scoring.base as scoring_base

    monkeypatch.setattr(scoring_base, "DEFAULT_SHARD_SIZE", 3)  # shards with and without pool members
    data = _pool(tmp_path / "pool", 10)
    with FaultyJudge(answer=lambda messages: "5") as judge:
        result = compute_scores(data, "alpagasus", {"judge": "faulty", "judge_base_url": judge.base_url,
                                                    "preset": "study", "pool_size": 4}, StepStore())
        assert judge.chat_requests == 4
        assert {b["max_tokens"] for b in judge.bodies} == {3} and all("temperature" not in b for b in judge.bodies)
    _, columns = read_scores(result.path)
    rated = np.flatnonzero(~np.isnan(columns["score"]))
    assert sorted(rated.tolist()) == sorted(np.random.default_rng(42).permutation(10)[:4].tolist())
    assert result.summary["rated"] == 4 and result.summary["not_asked"] == 6 and result.summary["unparsed"] == 0
    assert np.isnan(columns["status"]).sum() == 6


def test_score_key_changes_with_what_changes_the_ratings(tmp_path):
    data = _pool(tmp_path / "pool", 3)
    base = {"judge": "j", "judge_base_url": "http://127.0.0.1:9/v1"}
    variants = [{"judge": "k"}, {"judge_base_url": "http://127.0.0.1:10/v1"}, {"preset": "study"},
                {"max_tokens": 8}, {"pool_size": 2}, {"pool_size": 2, "pool_seed": 1}]
    fingerprints = [AlpagasusScorer(**base).fingerprint(), *(AlpagasusScorer(**{**base, **v}).fingerprint()
                                                              for v in variants)]
    assert len({json.dumps(f, sort_keys=True) for f in fingerprints}) == len(variants) + 1
    same = AlpagasusScorer(**base, judge_workers=9, judge_timeout=3, judge_api_key_env="OTHER").fingerprint()
    assert same == fingerprints[0]
    assert data.is_dir()


def test_unreachable_judge_exits_2_naming_the_url(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score", "alpagasus", "--data", str(_pool(tmp_path / "pool", 3)), "--judge",
                                      "j", "--judge-base-url", url, "--out", str(out)])
    assert result.exit_code == 2 and url in result.output and "judge-base-url" in result.output
    assert not out.exists()


def test_rates_through_selbench_serve(tiny_model_dir, tmp_path):
    """A real `selbench serve` app over a tiny model scripted to answer "4.5": every example is rated, once."""
    from scripted_model import ScriptedOutput
    from selbench.assets import load_model
    from selbench.generation.server import BackgroundServer, create_app

    data = _pool(tmp_path / "pool", 5)
    model, tok = load_model(str(tiny_model_dir))
    scripted = ScriptedOutput(model, tok, "4.5\nThe response is accurate.")
    try:
        served = create_app(model, tok, "tiny")
        with BackgroundServer(served) as server:
            common = ["--data", str(data), "--judge", "tiny", "--judge-base-url", server.base_url]
            out = tmp_path / "scores.parquet"
            first = _json(CliRunner().invoke(app, ["score", "alpagasus", *common, "--out", str(out), "--json"]))
            assert served.state.counts["chat"] == 5 and first["unparsed"] == 0 and first["tokens"] > 0
            assert read_scores(out)[1]["score"].tolist() == [4.5] * 5
            sel = _json(CliRunner().invoke(app, ["select", "alpagasus", *common, "--threshold", "4.5", "--budget",
                                                 "3", "--out", str(tmp_path / "sel.json"), "--json"]))
            assert sel["n_selected"] == 3 and served.state.counts["chat"] == 5  # ratings reused
    finally:
        scripted.remove()


@pytest.mark.slow
def test_smollm2_rates_sharegpt_examples_with_the_study_preset(tmp_path):
    """The packaged SmolLM2 as the judge behind `selbench serve`, the study's 3-token request, a few ShareGPT
    conversations: every reply is either a rating on the scale or counted as unparsed."""
    from selbench.assets import load_model
    from selbench.data.base import Dropped
    from selbench.data.reader import iter_records
    from selbench.data.sharegpt import convert_conversation, packaged_path
    from selbench.generation.server import BackgroundServer, create_app

    examples = []
    for _, record in iter_records(packaged_path(), allow_truncated=True):
        example = None if isinstance(record, Dropped) else convert_conversation(record, "sharegpt")
        if isinstance(example, Example) and len(example.instruction) + len(example.output) < 1200:
            examples.append(example)
        if len(examples) == 6:
            break
    prepared = tmp_path / "sharegpt"
    prepared.mkdir()
    write_examples(examples, prepared / "data.parquet")
    (prepared / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": len(examples)}))
    model, tok = load_model("smollm2-135m-instruct")
    served = create_app(model, tok, "smollm2")
    with BackgroundServer(served) as server:
        out = _json(CliRunner().invoke(app, [
            "score", "alpagasus", "--data", str(prepared), "--judge", "smollm2", "--judge-base-url", server.base_url,
            "--preset", "study", "--out", str(tmp_path / "scores.parquet"), "--json"]))
    scores = read_scores(tmp_path / "scores.parquet")[1]["score"]
    assert out["n"] == len(scores) == served.state.counts["chat"]
    assert out["unparsed"] == int(np.isnan(scores).sum())
    assert all(0 <= s <= 5 for s in scores[~np.isnan(scores)])


def test_a_local_judge_is_served_for_the_step_and_keyed_by_its_weights(tiny_model_dir, tmp_path, isolated_cache):
    """`--judge MODEL_FOLDER` without a base URL: selbench serves those weights on 127.0.0.1 while the score
    step runs (the offline demo's AlpaGasus). Every example is asked; the step and the request cache are keyed
    by the weights' hash, not by the port, so a re-run on a new port asks the model nothing again."""
    from selbench.assets import model_fingerprint

    data = _pool(tmp_path / "pool", 4)
    judge = str(tiny_model_dir)
    scorer = AlpagasusScorer(judge=judge, preset="study")
    assert scorer.local_judge and scorer.fingerprint()["judge"] == {
        "model": judge, "served_by": "selbench serve", **model_fingerprint(judge)}
    assert not AlpagasusScorer(judge=judge, judge_base_url="http://127.0.0.1:9/v1").local_judge
    common = ["--data", str(data), "--judge", judge, "--preset", "study"]
    out = tmp_path / "scores.parquet"
    first = _json(CliRunner().invoke(app, ["score", "alpagasus", *common, "--out", str(out), "--json"]))
    assert first["requests"] == 4 and first["rejected"] == 0 and first["rated"] + first["unparsed"] == 4
    assert first["judge"]["http_requests"] == 4 and first["judge"]["cached"] == 0
    assert first["tokens"] > 0 and not first["cached"] and first["cost_usd"] >= 0
    statuses = read_scores(out)[1]["status"]
    assert set(statuses.tolist()) <= {0.0, 1.0}
    store = StepStore(isolated_cache)
    options = {"judge": judge, "preset": "study"}
    again = compute_scores(data, "alpagasus", options, store)
    assert again.cached
    # The scores are gone, the answers are not: a new server (another port) is asked nothing.
    import shutil

    shutil.rmtree(again.path.parent)
    third = compute_scores(data, "alpagasus", options, store)
    assert not third.cached and third.key == again.key
    assert third.summary["judge"]["cached"] == 4 and third.summary["judge"]["http_requests"] == 0
    np.testing.assert_array_equal(read_scores(third.path)[1]["status"], statuses)

"""The length scorer and the cached "score" step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from selbench.cli.main import app
from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.errors import InputError
from selbench.scoring.base import SCORERS, compute_scores, read_scores
from selbench.scoring.length import LengthScorer
from selbench.store import StepStore

OUTPUTS = ["short", "", "a much longer response, with ünïcode", "two\nlines"]


def _pool(folder: Path, outputs=OUTPUTS) -> Path:
    examples = [Example(instruction=f"q{i}", output=o) for i, o in enumerate(outputs)]
    # A multi-turn example: its response is `output`, the first assistant turn, not the later ones.
    examples.append(Example(instruction="hi", output="hello!", messages=[
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello!"},
        {"role": "user", "content": "more"}, {"role": "assistant", "content": "x" * 500}]))
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": len(examples)}))
    return folder


def test_chars_are_code_points_of_the_first_response(tmp_path):
    result = compute_scores(_pool(tmp_path), "length", {})
    ids, columns = read_scores(result.path)
    assert columns["length"].tolist() == [5, 0, 36, 9, 6]
    assert result.n == 5 and not result.cached and result.cost["tokens"] == 0


def test_tokens_count_the_given_tokenizer(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    result = compute_scores(_pool(tmp_path), "length", {"unit": "tokens", "tokenizer": str(tiny_model_dir)})
    _, columns = read_scores(result.path)
    expected = [len(tok(o, add_special_tokens=False)["input_ids"]) for o in [*OUTPUTS, "hello!"]]
    assert columns["length"].tolist() == expected
    assert result.cost["tokens"] == sum(expected) > 0


def test_second_call_is_cached_and_free(tmp_path):
    store = StepStore(tmp_path / "cache")
    first = compute_scores(_pool(tmp_path), "length", {}, store)
    second = compute_scores(tmp_path, "length", {}, store)
    assert (first.cached, second.cached) == (False, True)
    assert second.key == first.key and second.cost == first.cost
    assert second.call_cost["usd"] == 0.0 and second.call_cost["wall_seconds"] == 0.0


def test_score_key_changes_with_every_input(tmp_path, tiny_model_dir, monkeypatch):
    from transformers import AutoTokenizer

    store = StepStore(tmp_path / "cache")
    base_pool = _pool(tmp_path / "a")
    base = compute_scores(base_pool, "length", {}, store).key
    other_pool = _pool(tmp_path / "b", outputs=[*OUTPUTS[:-1], "changed"])
    tokens = compute_scores(base_pool, "length", {"unit": "tokens", "tokenizer": str(tiny_model_dir)}, store).key
    # Same tokenizer content in another folder: same key; one more token in the vocab: new key.
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.save_pretrained(tmp_path / "tok-copy")
    copy_key = compute_scores(base_pool, "length", {"unit": "tokens", "tokenizer": str(tmp_path / "tok-copy")},
                              store).key
    tok.add_tokens(["<|extra|>"])
    tok.save_pretrained(tmp_path / "tok-changed")
    changed = compute_scores(base_pool, "length", {"unit": "tokens", "tokenizer": str(tmp_path / "tok-changed")},
                             store).key
    monkeypatch.setattr(LengthScorer, "VERSION", LengthScorer.VERSION + 1)
    bumped = compute_scores(base_pool, "length", {}, store).key
    keys = {"dataset": compute_scores(other_pool, "length", {}, store).key, "unit": tokens,
            "tokenizer": changed, "version": bumped}
    assert copy_key == tokens
    assert len(set(keys.values()) | {base}) == len(keys) + 1, keys


@pytest.mark.parametrize("options, field", [({"unit": "words"}, "unit"), ({"unit": "tokens"}, "tokenizer")])
def test_bad_options_name_the_field(tmp_path, options, field):
    with pytest.raises(InputError) as info:
        compute_scores(_pool(tmp_path), "length", options)
    assert info.value.field == field


def test_registry_suggests_near_names():
    assert "length" in SCORERS.names()
    with pytest.raises(KeyError, match="did you mean 'length'"):
        SCORERS.get("lenght")


def test_cli_json_contract(tmp_path):
    runner = CliRunner()
    out = tmp_path / "scores" / "length.parquet"
    result = runner.invoke(app, ["score", "length", "--data", str(_pool(tmp_path)), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"n", "seconds", "tokens", "cost_usd"} <= set(payload) and payload["n"] == 5
    assert read_scores(out)[1]["length"].tolist() == [5, 0, 36, 9, 6]
    result = runner.invoke(app, ["score", "length", "--data", str(tmp_path / "missing"), "--out", str(out)])
    assert result.exit_code == 2 and "no prepared dataset" in result.output


def test_response_chars_matches_python_len():
    from selbench.scoring.length import response_chars

    texts = ["", "é", "日本語", "a\nb"]
    assert response_chars(texts).tolist() == [len(t) for t in texts]
    assert response_chars(texts).dtype == np.int64


@pytest.mark.slow
def test_tokens_of_the_packaged_smollm2(tmp_path):
    from selbench.assets import load_model

    _, tok = load_model("smollm2-135m-instruct")
    result = CliRunner().invoke(app, ["score", "length", "--data", str(_pool(tmp_path)), "--out",
                                      str(tmp_path / "s.parquet"), "--model", "smollm2-135m-instruct", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    expected = [len(tok(o, add_special_tokens=False)["input_ids"]) for o in [*OUTPUTS, "hello!"]]
    assert read_scores(tmp_path / "s.parquet")[1]["length"].tolist() == expected
    assert payload["tokens"] == sum(expected)

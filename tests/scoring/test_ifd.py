"""IFD: equal to Cherry LLM's and Superfiltering's per-example computation, cached, and served over HTTP."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from selbench.data.schema import Example, rows_sha256, write_examples
from selbench.errors import InputError
from selbench.generation.server import BackgroundServer, create_app
from selbench.scoring.base import compute_scores, read_scores
from selbench.scoring.ifd import IFDScorer, ifd_columns, ifd_scores
from selbench.store import StepStore

# The Alpaca prompt exactly as Cherry LLM's `data_analysis.py` writes it (no newline after "### Response:").
NO_INPUT = ("Below is an instruction that describes a task. Write a response that appropriately completes the "
            "request.\n\n### Instruction:\n{instruction}\n\n### Response:")
WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides further context. "
              "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
              "### Input:\n{input}\n\n### Response:")
MAX_LENGTH = 96

EXAMPLES = [
    {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour of the sky."},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5"},
    {"instruction": "Summarise: " + "words " * 120, "input": "", "output": "Too long a prompt."},  # prompt_too_long
    {"instruction": "Say nothing.", "input": "", "output": ""},  # no response tokens
    {"instruction": "Count.", "input": "", "output": " ".join(str(i) for i in range(80))},  # truncated response
    {"instruction": "Repeat the word.", "input": "word", "output": "word word word"},
]


def cherry_reference(model, tok, example, max_length):
    """One example, Cherry's way: `data_analysis.py --mod cherry --prompt alpaca` then `data_by_IFD.py`."""
    instruction, inp, output = example["instruction"], example["input"], example["output"]
    prompt = (WITH_INPUT if inp else NO_INPUT).format(instruction=instruction, input=inp)
    whole, direct = prompt + output, "### Response:" + output
    ins_len = len(tok.encode(prompt, truncation=True, max_length=max_length))

    def token_losses(text, limit):
        ids = tok.encode(text, truncation=True, max_length=limit)
        start = len(tok.encode(text[: text.rfind(output)]))
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        losses = [float(-torch.log_softmax(logits[i - 1], -1)[ids[i]]) for i in range(1, len(ids))]
        return len(ids) - start, np.array(losses[start - 1 : len(ids) - 1])

    if max_length - ins_len <= 0:
        return math.nan
    len_1, losses_1 = token_losses(direct, max_length - ins_len + 4)
    len_2, losses_2 = token_losses(whole, max_length)
    if len_1 <= 0 or len_2 <= 0 or ins_len + len_1 > max_length:
        return math.nan
    return losses_2.mean() / losses_1.mean()


def superfilter_reference(model, tok, example, max_length):
    """One example, Superfiltering's way (`code_ifd/data_analysis.py --prompt none`, `put_analysis_to_data.py`)."""
    instruction, inp, output = example["instruction"], example["input"], example["output"]
    prompt = f"{instruction}\n{inp}\n" if inp else f"{instruction}\n"
    whole = prompt + output
    if output == "":
        return math.nan
    ins_len = len(tok.encode(prompt, truncation=True, max_length=max_length))
    with torch.no_grad():
        ids = torch.tensor([tok.encode(output, truncation=True, max_length=max_length - ins_len + 1)])
        loss_alone = model(ids, labels=ids).loss
        ids = torch.tensor([tok.encode(whole, truncation=True, max_length=max_length)])
        labels = ids.clone()
        labels[0, : len(tok.encode(whole[: whole.rfind(output)]))] = -100
        loss_cond = model(ids, labels=labels).loss
    return float(torch.exp(loss_cond)) / float(torch.exp(loss_alone))


@pytest.fixture(scope="module")
def bos_tokenizer(tiny_model_dir):
    """The tiny tokenizer made to prepend a BOS token, as LLaMA's does (Cherry's `+4` then fits exactly)."""
    from tokenizers import processors
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    bos = tok.convert_tokens_to_ids("<|endoftext|>")
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos)])
    assert tok.encode("hi")[0] == bos
    return tok


@pytest.mark.parametrize("with_bos", [False, True])
def test_ifd_scores_equal_cherrys_per_example_losses(tiny_model, bos_tokenizer, with_bos):
    model, tok = tiny_model
    tok = bos_tokenizer if with_bos else tok
    expected = np.array([cherry_reference(model, tok, e, MAX_LENGTH) for e in EXAMPLES])
    got = ifd_scores(model, tok, EXAMPLES, max_length=MAX_LENGTH)
    np.testing.assert_allclose(got, expected, rtol=1e-5, equal_nan=True)
    assert np.isnan(got[[2, 3]]).all() and np.isfinite(got[[0, 1, 5]]).all()
    # Without a BOS, `### Response:` is 3 tokens, so Cherry's `+4` skips a truncated response; with one it does not.
    assert np.isnan(got[4]) != with_bos


def test_columns_hold_both_losses_and_the_skip_reason(tiny_model):
    model, tok = tiny_model
    columns = ifd_columns(model, tok, EXAMPLES, MAX_LENGTH)
    assert columns["ifd_skip"].tolist() == [0, 0, 1, 2, 3, 0]
    scored = columns["ifd_skip"] == 0
    np.testing.assert_allclose(columns["ifd"][scored], (columns["loss_cond"] / columns["loss_uncond"])[scored])
    # Skipped examples are not run through the model at all.
    assert np.isnan(columns["loss_cond"][~scored]).all() and np.isnan(columns["loss_uncond"][~scored]).all()


def test_superfilter_equals_its_reference(tiny_model):
    model, tok = tiny_model
    examples = [*EXAMPLES, {"instruction": "x", "input": "", "output": "y"}]  # one-token output: NaN alone-loss
    expected = np.array([superfilter_reference(model, tok, e, MAX_LENGTH) for e in examples])
    got = ifd_columns(model, tok, examples, MAX_LENGTH, method="superfilter")["ifd"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, equal_nan=True)
    assert np.isfinite(got[4]) and np.isnan(got[3])


def test_batching_does_not_change_the_scores(tiny_model):
    model, tok = tiny_model
    one = ifd_columns(model, tok, EXAMPLES, MAX_LENGTH, batch_tokens=1)  # one sequence per forward pass
    many = ifd_columns(model, tok, EXAMPLES, MAX_LENGTH, batch_tokens=100_000)
    np.testing.assert_allclose(one["loss_cond"], many["loss_cond"], rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(one["loss_uncond"], many["loss_uncond"], rtol=1e-5, equal_nan=True)


def _pool(folder: Path, examples=EXAMPLES) -> Path:
    rows = [Example(instruction=e["instruction"], input=e["input"], output=e["output"] or " ") for e in examples]
    write_examples(rows, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(rows), "n": len(rows)}))
    return folder


def test_scorer_step_is_cached_and_keyed_by_its_options(tmp_path, tiny_model_dir, tiny_model):
    store = StepStore(tmp_path / "cache")
    data = _pool(tmp_path / "pool")
    options = {"model": str(tiny_model_dir), "max_length": MAX_LENGTH}
    first = compute_scores(data, "ifd", options, store)
    ids, columns = read_scores(first.path)
    assert sorted(columns) == ["ifd", "ifd_skip", "loss_cond", "loss_uncond"] and len(ids) == len(EXAMPLES)
    model, tok = tiny_model
    examples = [{**e, "output": e["output"] or " "} for e in EXAMPLES]
    np.testing.assert_allclose(columns["ifd"], ifd_scores(model, tok, examples, MAX_LENGTH), rtol=1e-6,
                               equal_nan=True)
    assert first.cost["tokens"] > 0 and not first.cached
    # `score ifd --json` prints n_skipped (DESIGN): the examples whose ifd is NaN, also when read from the cache.
    assert first.summary["n_skipped"] == int(np.isnan(columns["ifd"]).sum()) >= 2
    assert sum(first.summary["skipped_by_reason"].values()) == first.summary["n_skipped"]
    second = compute_scores(data, "ifd", options, store)
    assert second.cached and second.key == first.key and second.call_cost["wall_seconds"] == 0.0
    assert second.summary == first.summary
    # Speed-only options share the scores; what changes them gets a new key.
    assert compute_scores(data, "ifd", {**options, "batch_tokens": 64}, store).cached
    for change in ({"max_length": 64}, {"method": "superfilter"}, {"dtype": "bfloat16"}):
        step_key = compute_scores(data, "ifd", {**options, **change}, store).key
        assert step_key != first.key, change


def test_bad_options_name_their_field():
    with pytest.raises(InputError, match="method"):
        IFDScorer(method="alpagasus")
    with pytest.raises(InputError, match="max_length"):
        IFDScorer(max_length=2)
    with pytest.raises(InputError, match="base_url"):
        IFDScorer(base_url="ftp://example.org/v1")


def test_server_backend_agrees_with_the_local_one(tmp_path, tiny_model_dir):
    """`selbench serve`'s app over the same saved model, on 127.0.0.1, scored through /v1/completions echo."""
    from selbench.assets import load_model

    model, tok = load_model(str(tiny_model_dir), device="cpu")
    data = _pool(tmp_path / "pool")
    local = compute_scores(data, "ifd", {"model": str(tiny_model_dir), "max_length": MAX_LENGTH})
    with BackgroundServer(create_app(model, tok, "tiny")) as first, BackgroundServer(create_app(model, tok, "tiny")) as second:
        urls = f"{first.base_url},{second.base_url}"
        remote = compute_scores(data, "ifd", {"model": str(tiny_model_dir), "max_length": MAX_LENGTH, "base_url": urls})
    assert remote.key != local.key
    _, a = read_scores(local.path)
    _, b = read_scores(remote.path)
    np.testing.assert_allclose(b["ifd"], a["ifd"], atol=1e-4, equal_nan=True)
    assert (a["ifd_skip"] == b["ifd_skip"]).all()


@pytest.mark.slow
def test_both_backends_agree_on_smollm2(tmp_path):
    from selbench.assets import load_model

    model, tok = load_model("smollm2-135m-instruct", device="cpu")
    examples = EXAMPLES[:2] + EXAMPLES[5:]
    data = _pool(tmp_path / "pool", examples)
    local = compute_scores(data, "ifd", {"max_length": MAX_LENGTH})
    with BackgroundServer(create_app(model, tok, "smollm2")) as server:
        remote = compute_scores(data, "ifd", {"max_length": MAX_LENGTH, "base_url": server.base_url})
    _, a = read_scores(local.path)
    _, b = read_scores(remote.path)
    assert np.isfinite(a["ifd"]).all()
    np.testing.assert_allclose(b["ifd"], a["ifd"], atol=1e-4)
    expected = [cherry_reference(model, tok, e, MAX_LENGTH) for e in examples]
    np.testing.assert_allclose(a["ifd"], expected, rtol=1e-4)


def test_key_follows_the_model_content_not_its_path(tmp_path, tiny_model_dir):
    import shutil

    from selbench.assets.tiny import build_tiny_model

    copy = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    other = tmp_path / "other"
    build_tiny_model(other, seed=1)
    key = IFDScorer(model=str(tiny_model_dir)).fingerprint()
    assert IFDScorer(model=str(copy)).fingerprint() == key
    assert IFDScorer(model=str(other)).fingerprint()["model_sha256"] != key["model_sha256"]
    assert "model" not in key

"""Superfiltering end to end on a tiny model: IFD with its prompt and ratio, the rule, the cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from selbench.data.schema import Example, read_examples, rows_sha256, write_examples
from selbench.errors import InputError
from selbench.scoring.ifd import ifd_columns
from selbench.selection.ifd_select import rank_by_ifd
from selbench.selection.manifest import run_selection
from selbench.selection.superfilter import SuperfilterStrategy
from selbench.store import StepStore

WORDS = "the a sea light keeper storm ship night wave rock bright dark tower old".split()


def write_text_pool(folder: Path, n: int, seed: int = 0) -> Path:
    """n short instruction/response pairs of random words (a tiny random model gives IFDs around 1)."""
    rng = np.random.default_rng(seed)
    examples = []
    for i in range(n):
        words = rng.choice(WORDS, int(rng.integers(3, 30)))
        examples.append(Example(instruction=f"Write {len(words)} words about item {i}.",
                                input="" if i % 3 else "in a calm voice", output=" ".join(words)))
    write_examples(examples, folder / "data.parquet")
    (folder / "manifest.json").write_text(json.dumps({"sha256": rows_sha256(examples), "n": n}))
    return folder


@pytest.fixture
def text_pool(tmp_path) -> Path:
    return write_text_pool(tmp_path / "pool", 60)


def test_selects_the_highest_ifd_below_one(tmp_path, text_pool, tiny_model_dir, tiny_model):
    store = StepStore(tmp_path / "cache")
    params = {"model": str(tiny_model_dir), "max_length": 64}
    run = run_selection(text_pool, "superfilter", 10, tmp_path / "sel.json", params=params, store=store)
    model, tok = tiny_model
    examples = [{"instruction": e.instruction, "input": e.input, "output": e.output} for e in read_examples(text_pool)]
    ifd = ifd_columns(model, tok, examples, 64, method="superfilter")["ifd"]
    expected = rank_by_ifd(ifd, rule="superfilter")[:10]
    ids = [e.id for e in read_examples(text_pool)]
    assert run.manifest["ids"] == [ids[i] for i in expected]
    assert (ifd[expected] < 1).all() and run.manifest["fallback"]["used"] is False
    assert run.manifest["scores"]["ifd"]["config"]["method"] == "superfilter"
    assert run.manifest["info"]["n_kept"] == int((ifd < 1).sum())
    # A second budget reuses the scores: nothing is scored again.
    again = run_selection(text_pool, "superfilter", 20, tmp_path / "sel20.json", params=params, store=store)
    assert again.manifest["scores"]["ifd"]["cached"] is True
    assert again.manifest["ids"][:10] == run.manifest["ids"]


def test_bad_params_name_their_field():
    with pytest.raises(InputError, match="max_ifd"):
        SuperfilterStrategy(max_ifd=float("nan"))
    from selbench.scoring.base import build_scorer

    with pytest.raises(InputError, match="base_url"):  # the scorer checks the URL when the request is built
        build_scorer("ifd", SuperfilterStrategy(base_url="localhost:8000").score_requests()["ifd"][1])

"""Response length, the score behind the "longest" strategy.

Zhao et al. (2024), "Long Is More for Alignment" (https://arxiv.org/abs/2402.04833), select the examples
with the longest responses; Diddee & Ippolito rank by the response's length in characters, which is the
default here. `unit="tokens"` counts tokens of a given tokenizer instead (no special tokens added).

The response is the `output` field. For multi-turn (ShareGPT-like) examples that is the first assistant
turn, as the loaders fill `output` from it; later turns are not counted. Characters are Unicode code points
of the text as stored, i.e. as read from the source (not normalised: only example ids normalise), which is
what the study's `len(example["output"])` counts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

# One tokenizer loader and one tokenizer hash for the whole package (re-exported here for older imports).
from selbench.assets.fingerprint import tokenizer_fingerprint  # noqa: F401
from selbench.assets.models import load_tokenizer
from selbench.cost import CostMeter
from selbench.errors import InputError

log = logging.getLogger(__name__)

UNITS = ("chars", "tokens")
_BATCH = 4096
_CHARS_SHARD = 1 << 16

@dataclass(frozen=True)
class LengthScorer:
    """Per-example response length.

    Args:
        unit: "chars" (the study's) or "tokens"; default chars, or tokens when a tokenizer or model is given.
        tokenizer: tokenizer folder or model spec; required for (and only used with) unit="tokens".
        model: count tokens of this model's tokenizer (an alias of tokenizer).
    """

    unit: str | None = None
    tokenizer: str | None = None
    model: str | None = None

    name = "length"
    VERSION = 1
    columns = ("output",)

    def __post_init__(self) -> None:
        if self.unit is None:
            object.__setattr__(self, "unit", "tokens" if self.tokenizer_spec else "chars")
        if self.unit not in UNITS:
            raise InputError(f"got {self.unit!r}, allowed: {', '.join(UNITS)}", field="unit")
        if self.unit == "tokens" and not self.tokenizer_spec:
            raise InputError("unit 'tokens' needs a tokenizer (--tokenizer or --model)", field="tokenizer")
        if self.tokenizer and self.model and self.tokenizer != self.model:
            raise InputError(f"give either tokenizer or model, not both ({self.tokenizer!r} vs {self.model!r})",
                             field="tokenizer")

    @property
    def tokenizer_spec(self) -> str | None:
        return self.tokenizer or self.model

    @cached_property
    def _tokenizer(self) -> Any:
        assert self.tokenizer_spec, "tokenizer needed only for unit='tokens'"
        return load_tokenizer(self.tokenizer_spec)

    def fingerprint(self) -> dict[str, Any]:
        if self.unit == "chars":
            return {"unit": "chars"}
        # The tokenizer's content, not its name, keys the cache: two folders holding the same tokenizer
        # share scores, and a changed vocab never reuses stale ones.
        return {"unit": "tokens", "tokenizer_sha256": tokenizer_fingerprint(self._tokenizer)}

    @property
    def shard_size(self) -> int:
        """Examples per resumable shard: counting characters costs next to nothing per row, tokens do not."""
        return _CHARS_SHARD if self.unit == "chars" else _BATCH

    def score(self, rows: Mapping[str, Any], meter: CostMeter) -> dict[str, np.ndarray]:
        """`rows["output"]`: a list of strings, or a pyarrow string array (counted without Python strings)."""
        outputs = rows["output"]
        if self.unit == "chars":
            return {"length": response_chars(outputs)}
        if not isinstance(outputs, list):
            outputs = outputs.to_pylist()
        from tqdm.auto import tqdm

        lengths = np.zeros(len(outputs), dtype=np.int64)
        for start in tqdm(range(0, len(outputs), _BATCH), desc="length (tokens)", unit="batch", disable=None):
            batch = outputs[start : start + _BATCH]
            ids = self._tokenizer(batch, add_special_tokens=False)["input_ids"]
            lengths[start : start + len(batch)] = [len(x) for x in ids]
        meter.add_tokens(int(lengths.sum()))
        return {"length": lengths}


def response_chars(outputs: Any) -> np.ndarray:
    """Length in characters (code points) of each response (None counts 0); `outputs` is a list of strings or
    a pyarrow string array, whose lengths are counted in Arrow (`utf8_length`: code points, as `len`).

    >>> response_chars(["ab", "", "héllo", None]).tolist()
    [2, 0, 5, 0]
    >>> import pyarrow as pa
    >>> response_chars(pa.chunked_array([["ab", None], ["héllo"]])).tolist()
    [2, 0, 5]
    """
    if isinstance(outputs, list):
        return np.fromiter((len(text or "") for text in outputs), dtype=np.int64, count=len(outputs))
    import pyarrow as pa
    import pyarrow.compute as pc

    lengths = pc.fill_null(pc.utf8_length(outputs), 0).cast(pa.int64())
    if isinstance(lengths, pa.ChunkedArray):
        lengths = lengths.combine_chunks()
    return lengths.to_numpy(zero_copy_only=False)

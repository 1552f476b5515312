"""AlpaGasus ratings: an LLM judge rates the accuracy of every example's response on a 0-5 scale.

Chen et al. (2023), "AlpaGasus: Training a Better Alpaca with Fewer Data" (https://arxiv.org/abs/2307.08701).
Requests go through the shared client (`selbench.llm.LLMClient`) to any OpenAI-compatible endpoint (OpenAI,
vLLM, llama.cpp's server, `selbench serve`): cached per request inside the step store, concurrent, retried on
429/5xx/timeouts, tokens and dollars accounted. The whole score step is cached too (DESIGN.md), so a second
budget or a re-run asks the judge nothing.

Presets (the prompts are reproduced byte for byte: the judge must see exactly what the authors sent):

* `alpagasus` - the authors' rating script (github.com/gpt4life/alpagasus, `rating/chatgpt_rating.py`, the
  accuracy dimension): a system line asking for feedback, then a user message holding the example as
  `###Instruction:` / `### Input:` / `### Response:` sections (the Input section is written even when empty)
  followed by the accuracy rating request; temperature 0, top_p 1, at most 256 output tokens (the script's
  default). The paper's judge was ChatGPT (`gpt-3.5-turbo-0301`); it kept ratings >= 4.5
  (`rating/filter.py`; here `selbench select alpagasus --threshold 4.5`).
* `study` - Diddee & Ippolito's `src/preprocessor/scorer.py` (github.com/ippolito-cmu/ChasingRandom): its own
  wording of the same system line and request, the example as `Instruction: {instruction}{input} \\n
  Response: {output}\\n` (its sampler joins instruction and input with nothing between them), at most 3
  output tokens, no temperature sent (the API default), judged by gpt-4o. Only a shuffled 40,000-example
  pool is rated, as the study's sampler shuffled the dataset with seed 42 (`Dataset.shuffle`, i.e.
  `np.random.default_rng(42).permutation`) and its scorer rated the first 40,000; the other examples get
  NaN. The study kept ratings >= 4, best first, at most the budget (`--threshold 4 --budget N`).

A judge named by its weights (a packaged model such as `smollm2-135m-instruct`, a model folder or
`hf://org/name`) with no `judge_base_url` is served by selbench itself: `selbench serve`'s app on a free
127.0.0.1 port while the score step runs (the offline demo's AlpaGasus). Its ratings are then keyed by the
weights' content hash, not by a URL, and the request cache by the same hash, so a re-run on another port
reuses every answer.

Multi-turn records are rated on their first exchange (`instruction`, `output`), as both pipelines did.

Parsing (both presets): the rating is the first number in the reply, if it lies on the 0-5 scale; a reply
without one, or whose first number is off the scale, is NaN and counted as `unparsed` (a request the
endpoint refuses as invalid, e.g. too long for the judge, is NaN and counted as `rejected`). The `status`
column says which: 1 rated, 0 unparsed, -1 rejected, NaN not asked (outside the rated pool). Deviation: the
AlpaGasus script read the first line as a float (else the text after "score:"), and the study took the first
of the digits 0, 1, ..., 5 found anywhere in the reply (checked in that order, so "4.5" counted as 4 and
"10" as 0); both give -1 to unparsed replies. All three agree on a reply that starts with the rating, which
is what both prompts ask for.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from selbench.cost import CostMeter
from selbench.errors import InputError
from selbench.hashing import sha256_json
from selbench.llm.client import LLMClient, LLMConfig, ResponseParseError

SCALE = (0.0, 5.0)
PRESETS = ("alpagasus", "study")

# gpt4life/alpagasus rating/chatgpt_rating.py (accuracy dimension), verbatim.
ALPAGASUS_SYSTEM = (
    "We would like to request your feedback on the performance of AI assistant in response to the instruction "
    "and the given input displayed following."
)
ALPAGASUS_EXAMPLE = "###Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n{output}\n\n"
ALPAGASUS_REQUEST = (
    "Please rate according to the accuracy of the response to the instruction and the input. Each assistant "
    "receives a score on a scale of 0 to 5, where a higher score indicates higher level of the accuracy. Please "
    "first output a single line containing value indicating the scores. In the subsequent line, please provide "
    "a comprehensive explanation of your evaluation, avoiding any potential bias. \n\n"
)
# ippolito-cmu/ChasingRandom src/preprocessor/scorer.py make_review_messages, verbatim.
STUDY_SYSTEM = (
    "We would like to request your feedback on the performance of AI assistant in response to the instruction "
    "and the given input displayed following. \n\n"
)
STUDY_EXAMPLE = "Instruction: {instruction}{input} \n Response: {output}\n"
STUDY_REQUEST = (
    "Please rate the given instruction and response tuple according to the accuracy of the response. Each "
    "response receives a score on a scale of 0 to 5, where a higher score indicates higher level of the "
    "accuracy. Please first output a single line containing the value indicating the scores. In the subsequent "
    "line, please provide a comprehensive explanation of your evaluation, avoiding any potential bias."
)

PRESET_PROMPTS = {
    "alpagasus": (ALPAGASUS_SYSTEM, ALPAGASUS_EXAMPLE + ALPAGASUS_REQUEST),
    "study": (STUDY_SYSTEM, STUDY_EXAMPLE + STUDY_REQUEST),
}
PRESET_PARAMS: dict[str, dict[str, Any]] = {
    "alpagasus": {"temperature": 0.0, "max_tokens": 256, "top_p": 1.0},
    "study": {"max_tokens": 3},
}
PRESET_POOL = {"alpagasus": None, "study": 40_000}  # examples rated: None = all
PRESET_THRESHOLD = {"alpagasus": 4.5, "study": 4.0}  # what each kept (select --threshold)
STUDY_POOL_SEED = 42
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def parse_rating(text: str | None, scale: tuple[float, float] = SCALE) -> float:
    """The first number in a judge's reply, if it lies on the scale; else `ResponseParseError`.

    >>> parse_rating("4.5\\n\\nThe response is accurate."), parse_rating(" 3"), parse_rating("Score: 5/5")
    (4.5, 3.0, 5.0)
    >>> for bad in ("Accurate.", "10", "-1", "", None):
    ...     try:
    ...         parse_rating(bad)
    ...     except ResponseParseError:
    ...         print("unparsed", repr(bad))
    unparsed 'Accurate.'
    unparsed '10'
    unparsed '-1'
    unparsed ''
    unparsed None
    """
    found = _NUMBER.search(text or "")
    if found is None:
        raise ResponseParseError(f"no number in {text!r}")
    value = float(found.group())
    if not scale[0] <= value <= scale[1]:
        raise ResponseParseError(f"{value} is off the {scale[0]:g}-{scale[1]:g} scale")
    return value


def _reply_rating(response: dict[str, Any]) -> float:
    """The reply's rating, NaN when it has none (never raises: an unparsed reply is a result, counted)."""
    try:
        return parse_rating(((response.get("choices") or [{}])[0].get("message") or {}).get("content"))
    except ResponseParseError:
        return math.nan


def rating_messages(preset: str, instruction: str, input: str, output: str) -> list[dict[str, str]]:
    """The chat messages that ask the judge to rate one example under `preset`.

    >>> rating_messages("study", "Add 2 and 3.", "", "5")[1]["content"].startswith("Instruction: Add 2 and 3. \\n Response: 5\\n")
    True
    """
    system, user = PRESET_PROMPTS[preset]
    fields = {"instruction": instruction or "", "input": input or "", "output": output or ""}
    # Substitute the placeholders only (str.format would also interpret braces inside the example's text).
    text = re.sub(r"\{(instruction|input|output)\}", lambda m: fields[m.group(1)], user)
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def rated_indices(n: int, pool_size: int | None, seed: int) -> np.ndarray | None:
    """Which of n examples get rated (sorted): None = all, else the first `pool_size` of a seeded shuffle.

    >>> rated_indices(4, None, 42) is None, rated_indices(3, 40_000, 42) is None
    (True, True)
    >>> rated_indices(5, 2, 42).tolist() == sorted(np.random.default_rng(42).permutation(5)[:2].tolist())
    True
    """
    if pool_size is None or pool_size >= n:
        return None
    return np.sort(np.random.default_rng(seed).permutation(n)[:pool_size]).astype(np.int64)


@dataclass(frozen=True)
class AlpagasusScorer:
    """An LLM judge's 0-5 accuracy rating of every example (column `score`, NaN where there is none).

    Args:
        judge: model name at the endpoint (the paper: gpt-3.5-turbo-0301; the study: gpt-4o), or local weights (packaged model, folder, hf://) that selbench serves on 127.0.0.1 when judge_base_url is unset.
        judge_base_url: OpenAI-compatible base URL ending in /v1; None = api.openai.com (or the local judge's own server).
        judge_api_key_env: environment variable holding the API key (not needed on 127.0.0.1).
        preset: "alpagasus" (the authors' prompt and request) or "study" (ChasingRandom's).
        judge_workers: concurrent judge requests.
        judge_timeout: seconds before a request is abandoned and retried.
        max_tokens: output tokens per rating; None = the preset's (alpagasus 256, study 3).
        pool_size: rate only this many examples of a seeded shuffle; None = the preset's (alpagasus all, study 40000).
        pool_seed: seed of that shuffle (the study's sampler: 42).
    """

    judge: str
    judge_base_url: str | None = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    preset: str = "alpagasus"
    judge_workers: int = 4
    judge_timeout: float = 120.0
    max_tokens: int | None = None
    pool_size: int | None = None
    pool_seed: int = STUDY_POOL_SEED

    name: ClassVar[str] = "alpagasus"
    VERSION: ClassVar[int] = 1
    columns: ClassVar[tuple[str, ...]] = ("instruction", "input", "output")

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise InputError(f"got {self.preset!r}, allowed: {', '.join(PRESETS)}", field="preset")
        for name in ("max_tokens", "pool_size"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise InputError(f"{value!r} must be an integer >= 1", field=name.replace("_", "-"))
        if isinstance(self.pool_seed, bool) or not isinstance(self.pool_seed, int) or self.pool_seed < 0:
            raise InputError(f"{self.pool_seed!r} must be an integer >= 0", field="pool-seed")
        object.__setattr__(self, "_served_url", None)  # the local judge's URL while `session()` serves it
        self.llm_config()  # validates judge, URL, workers and the key's variable, naming their flags
        object.__setattr__(self, "_stats", {})

    @property
    def local_judge(self) -> bool:
        """The judge is weights selbench serves itself (no base URL, a loadable model spec)."""
        from selbench.assets.spec import is_local_model

        return is_local_model(self.judge, self.judge_base_url)

    def _weights_id(self) -> dict[str, str]:
        from selbench.assets import model_fingerprint

        return model_fingerprint(self.judge)

    def llm_config(self) -> LLMConfig:
        served = self._served_url  # type: ignore[attr-defined]
        return LLMConfig(model=self.judge, base_url=served or self.judge_base_url, api_key_env=self.judge_api_key_env,
                         max_workers=self.judge_workers, timeout_s=self.judge_timeout,
                         cache_endpoint=f"selbench-serve:{sha256_json(self._weights_id())}" if served else None)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """While the score step computes shards: a local judge is loaded and served on 127.0.0.1 (selbench
        serve's app); an endpoint judge needs nothing."""
        if not self.local_judge or self._served_url:  # type: ignore[attr-defined]
            yield
            return
        from selbench.assets import load_model
        from selbench.generation.server import BackgroundServer, create_app

        model, tokenizer = load_model(self.judge)
        with BackgroundServer(create_app(model, tokenizer, self.judge)) as server:
            object.__setattr__(self, "_served_url", server.base_url)
            try:
                yield
            finally:
                object.__setattr__(self, "_served_url", None)

    def request_params(self) -> dict[str, Any]:
        params = dict(PRESET_PARAMS[self.preset])
        if self.max_tokens is not None:
            params["max_tokens"] = self.max_tokens
        return params

    @property
    def effective_pool_size(self) -> int | None:
        return self.pool_size if self.pool_size is not None else PRESET_POOL[self.preset]

    def fingerprint(self) -> dict[str, Any]:
        # What changes the ratings: the judge (model at its endpoint), the exact prompt and request, which
        # examples are rated and how replies are read. Not the workers, the timeout or the key's variable.
        config = self.llm_config()
        judge: dict[str, Any] = {"model": config.model, "endpoint": config.endpoint}
        if self.local_judge:  # served here: the weights decide the ratings, not the (ephemeral) port
            judge = {"model": self.judge, "served_by": "selbench serve", **self._weights_id()}
        return {
            "preset": self.preset,
            "judge": judge,
            "params": self.request_params(),
            "prompt_sha256": sha256_json(list(PRESET_PROMPTS[self.preset])),
            "pool_size": self.effective_pool_size,
            "pool_seed": self.pool_seed if self.effective_pool_size is not None else None,
            "scale": list(SCALE),
            "parser": "first-number-on-scale",
        }

    def rows_to_score(self, n: int) -> np.ndarray | None:
        """The examples the judge is asked about (the score step gives the others NaN everywhere)."""
        return rated_indices(n, self.effective_pool_size, self.pool_seed)

    def score(self, rows: Mapping[str, list[Any]], meter: CostMeter) -> dict[str, np.ndarray]:
        """Ratings of one shard's rows: `score` (NaN where there is none) and `status` (1 rated, 0 the reply
        had no rating on the scale, -1 the endpoint rejected the request)."""
        requests = [rating_messages(self.preset, instruction, input, output)
                    for instruction, input, output in zip(rows["instruction"], rows["input"], rows["output"],
                                                          strict=True)]
        if self.local_judge and not self._served_url:  # type: ignore[attr-defined]  # outside a step's session
            with self.session():
                return self.score(rows, meter)
        client = LLMClient(self.llm_config())
        replies = client.judge_many(requests, self.request_params(), _reply_rating, progress=True,
                                    desc=f"alpagasus ({self.judge})") if requests else []
        if self.local_judge:  # this node's compute (its wall time is the cost), not API tokens at a list price
            meter.add_tokens(client.stats.prompt_tokens + client.stats.completion_tokens)
        else:
            client.charge(meter)  # a fresh client per shard: its tokens are this shard's
        scores = np.array([math.nan if r is None else r for r in replies], dtype=np.float64)
        status = np.array([-1.0 if r is None else (0.0 if math.isnan(r) else 1.0) for r in replies],
                          dtype=np.float64)
        counts = self._stats  # type: ignore[attr-defined]
        for name, value in client.stats.to_dict().items():
            counts[name] = counts.get(name, 0) + value
        return {"score": scores, "status": status}

    def summarize(self, columns: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """`rated`, `unparsed`, `rejected`, `requests` (examples the judge was asked about) and `not_asked`,
        from the stored columns; `judge`: the client's counters of the run that computed them."""
        status = np.asarray(columns["status"], dtype=np.float64)
        return {
            "rated": int((status == 1).sum()),
            "unparsed": int((status == 0).sum()),
            "rejected": int((status == -1).sum()),
            "requests": int((~np.isnan(status)).sum()),
            "not_asked": int(np.isnan(status).sum()),
            "judge": dict(self._stats),  # type: ignore[attr-defined]
        }

"""LLMBar: the fine-tuned model as a pairwise evaluator, with LLMBar's own protocol.

Zeng et al., 2024, "Evaluating Large Language Models at Evaluating Instruction Following"
(https://arxiv.org/abs/2310.07641); reference: princeton-nlp/LLMBar `LLMEvaluator/evaluate.py`.

Protocol, as in the reference:
* each instance is judged twice, with the outputs in the dataset's order and swapped; the swapped answer
  is mapped back to the dataset's numbering;
* the prompt (see `llmbar_prompts`) is a system + user message pair placed in the judge's chat template,
  decoded greedily for a few tokens (50; 300 for CoT), the completion decoded without special tokens and
  stripped, then read with the reference's regexes (first matching winner wins, "Output (a)" tried first);
* an unparseable answer is a wrong answer for accuracy, and two unparseable answers count as agreeing
  with each other (the reference compares the two parsed winners, None included);
* accuracy is `correct_average`: the mean of the two orders' accuracies; agreement is the reference's
  `equal`: the share of instances with the same underlying winner in both orders; the reference's Cohen's
  kappas come along (`llmbar_stats.llmbar_statistics`);
* each set is scored on its own (`per_set`); the Adversarial headline, as in the paper's tables, is the
  unweighted mean of the four sets' statistics (GPTInst 92, GPTOut 47, Manual 46, Neighbor 134 instances),
  not the rate over the 319 instances pooled, which we keep as `accuracy_pooled` / `agreement_pooled`
  (`llmbar_stats.combine_sets`); `unparsed` and `n` are totals;
* few-shot strategies put the solved examples as earlier chat turns; swap-and-synthesize (`swap`,
  `swap_cot`) judges with CoT in both orders and asks for a synthesis only where the two conflict;
* rating strategies score each output alone (0-9, read with Python `int`); the higher score wins, and
  ties and unreadable scores give one right and one wrong "order" (`llmbar_stats.rating_winners`).

Our variant `method="logprob"` (not in the reference) is for small judges that answer off-format: after
the prompt it reads the judge's next-token distribution where the two answers "Output (a)" and
"Output (b)" first differ (after their shared tokens "Output (") and picks the more probable one (ties:
"Output (a)", the reference's parse order). Nothing can be unparseable.

The reference loads LLaMA-2 judges in bfloat16 and writes LLaMA-2's chat format by hand; we use each
judge's own chat template (through `selbench.generation.hf.HFBackend`, batched, length-sorted, left-padded),
in the precision the model was loaded with, and never truncate prompts. The reference decodes with
`clean_up_tokenization_spaces=True`; we do not (transformers 5 ignores it for BPE tokenizers, and it only
moves spaces before punctuation, which the answer regexes do not look at).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from selbench.errors import InputError
from selbench.evaluation.base import METRICS_FILE, write_items
from selbench.evaluation.llmbar_data import (  # noqa: F401 - re-exported for callers of llmbar
    DATA_ENV,
    HUB_DATASET,
    REMOTE_BASE,
    SET_FOLDERS,
    SUBSETS,
    load_llmbar,
    resolve_data_dir,
)
from selbench.evaluation.llmbar_prompts import STRATEGIES, PromptStrategy, swap_output_names
from selbench.evaluation.llmbar_stats import combine_sets, llmbar_statistics, rating_winners
from selbench.generation.judge_model import (  # noqa: F401 - re-exported for callers of llmbar
    answer_logprobs,
    greedy_generate,
    load_judge,
    loaded_model_fingerprint,
    model_identity,
    render_prompt_ids,
)
from selbench.step import ShardedStep
from selbench.store import ShardProgress, StepStore

log = logging.getLogger(__name__)

STEP = "eval:llmbar"
# 2: kappa statistics added; 3: multi-set headline is the mean of the sets, *_pooled added;
# 4: the step folder also holds metrics.json and items.jsonl (results.jsonl unchanged)
VERSION = 4
METHODS = ("generate", "logprob")
SHARD_SIZE = 25  # instances judged (both orders) between progress saves


@dataclass(frozen=True)
class LLMBarConfig:
    """How to run the LLMBar evaluation.

    Args:
        subset: "natural" (100 instances) or "adversarial" (GPTInst, GPTOut, Manual, Neighbor; reported
            as the mean of the four sets, as in the paper).
        strategy: prompt strategy (`llmbar_prompts.STRATEGIES`); "vanilla_rules" is LLMBar's `Vanilla`.
        method: "generate" (the reference protocol) or "logprob" (our answer-probability variant).
        limit: judge only the first `limit` instances of each set (None: all).
        batch_size: prompts per forward batch (sorted by length to limit padding).
    """

    subset: str = "natural"
    strategy: str = "vanilla_rules"
    method: str = "generate"
    limit: int | None = None
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.subset not in SUBSETS:
            raise InputError(f"subset {self.subset!r} is not one of {sorted(SUBSETS)}", field="subset")
        if self.strategy not in STRATEGIES:
            raise InputError(f"strategy {self.strategy!r} is not one of {sorted(STRATEGIES)}", field="prompt-strategy")
        if self.method not in METHODS:
            raise InputError(f"method {self.method!r} is not one of {list(METHODS)}", field="method")
        if self.method == "logprob" and not STRATEGIES[self.strategy].direct_answer:
            raise InputError(f"method 'logprob' needs a strategy that answers directly; {self.strategy!r} reasons "
                             "first, reviews a debate or rates", field="method")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise InputError(f"limit {self.limit!r} must be an integer >= 1", field="limit")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError(f"batch_size {self.batch_size!r} must be an integer >= 1", field="batch-size")


def _flip(choice: int) -> int:
    return {1: 2, 2: 1, 0: 0}[choice]


def _auxiliary_texts(model: Any, tokenizer: Any, instances: list[dict[str, Any]], strategy: PromptStrategy,
                     batch_size: int) -> tuple[list[dict[str, str]], int]:
    """Generate each auxiliary input (questions, reference output) once per instance."""
    filled: list[dict[str, str]] = [{} for _ in instances]
    tokens = 0
    for aux in strategy.auxiliaries:
        prompts = [[{"role": "system", "content": aux.system.strip()},
                    {"role": "user", "content": aux.user.format(input=x["input"]).strip()}] for x in instances]
        texts, n_tok = greedy_generate(model, tokenizer, prompts, aux.max_new_tokens, batch_size)
        tokens += n_tok
        for row, text in zip(filled, texts, strict=True):
            row[aux.name] = text.strip()
    return filled, tokens


def debate_explanations(completion_original: str, completion_swapped: str, choice_original: int,
                        choice_swapped: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two debaters' explanations for the synthesis prompt, in the original and in the swapped order.

    Swap and synthesize (reference `annotate`, `SwapBased` branch): the CoT judgments of the two orders
    chose different outputs (`choice_*` in the dataset's numbering, {1, 2}). Assistant (a) defends
    whichever output is shown as Output (a); an explanation written while the outputs were shown in the
    other order has "Output (a)" and "Output (b)" exchanged.

    >>> debate_explanations("Output (a) is better.", "Output (a) is better.", 1, 2)
    (('Output (a) is better.', 'Output (b) is better.'), ('Output (a) is better.', 'Output (b) is better.'))
    """
    if {choice_original, choice_swapped} != {1, 2}:
        raise ValueError(f"no conflict to synthesize: choices {choice_original} and {choice_swapped}")
    written_swapped = {choice_original: False, choice_swapped: True}  # which order argued for output 1 / 2
    by_winner = {choice_original: completion_original, choice_swapped: completion_swapped}
    orders = []
    for swapped in (False, True):
        for_1, for_2 = (by_winner[w] if written_swapped[w] == swapped else swap_output_names(by_winner[w])
                        for w in (1, 2))
        orders.append((for_1, for_2) if not swapped else (for_2, for_1))
    return orders[0], orders[1]


def _judge_swap(model: Any, tokenizer: Any, instances: list[dict[str, Any]], config: LLMBarConfig,
                strategy: PromptStrategy) -> tuple[list[dict[str, Any]], int]:
    """Swap and synthesize: the first-stage strategy in both orders, a debate review where they conflict."""
    assert strategy.first_stage is not None, f"{strategy.name} has no first stage"
    first, tokens = judge(model, tokenizer, instances, replace(config, strategy=strategy.first_stage))
    records = [{"label": r["label"], "first_stage": dict(r), "choice_original": r["choice_original"],
                "choice_swapped": r["choice_swapped"]} for r in first]
    conflicts = [i for i, r in enumerate(first) if {r["choice_original"], r["choice_swapped"]} == {1, 2}]
    prompts = []
    for i in conflicts:
        x, r = instances[i], first[i]
        (a1, a2), (b1, b2) = debate_explanations(r["completion_original"], r["completion_swapped"],
                                                 r["choice_original"], r["choice_swapped"])
        prompts.append(strategy.messages(x["input"], x["output_1"], x["output_2"], explanation_1=a1, explanation_2=a2))
        prompts.append(strategy.messages(x["input"], x["output_2"], x["output_1"], explanation_1=b1, explanation_2=b2))
    if prompts:
        texts, n_tok = greedy_generate(model, tokenizer, prompts, strategy.max_new_tokens, config.batch_size)
        tokens += n_tok
        for j, i in enumerate(conflicts):
            rec = records[i]
            rec["completion_original"], rec["completion_swapped"] = texts[2 * j].strip(), texts[2 * j + 1].strip()
            rec["choice_original"] = strategy.parse(rec["completion_original"]) or 0
            rec["choice_swapped"] = _flip(strategy.parse(rec["completion_swapped"]) or 0)
    return records, tokens


def _judge_rating(model: Any, tokenizer: Any, instances: list[dict[str, Any]], config: LLMBarConfig,
                  strategy: PromptStrategy) -> tuple[list[dict[str, Any]], int]:
    """Rating (reference `annotate`, `Rating` branch): score each output alone, the higher score wins."""
    aux, tokens = _auxiliary_texts(model, tokenizer, instances, strategy, config.batch_size)
    prompts = [strategy.score_messages(x["input"], x[key], **extra)
               for x, extra in zip(instances, aux, strict=True) for key in ("output_1", "output_2")]
    texts, n_tok = greedy_generate(model, tokenizer, prompts, strategy.max_new_tokens, config.batch_size)
    completions = [t.strip() for t in texts]
    scores = [strategy.parse_score(t) for t in completions]
    original, swapped = rating_winners(scores[0::2], scores[1::2])
    records = []
    for i, (x, extra) in enumerate(zip(instances, aux, strict=True)):
        records.append({"label": x["label"], **({"auxiliary": extra} if extra else {}),
                        "completion_1": completions[2 * i], "completion_2": completions[2 * i + 1],
                        "score_1": scores[2 * i], "score_2": scores[2 * i + 1],
                        "choice_original": int(original[i]), "choice_swapped": int(swapped[i])})
    return records, tokens + n_tok


def judge(model: Any, tokenizer: Any, instances: list[dict[str, Any]], config: LLMBarConfig) -> tuple[list[dict[str, Any]], int]:
    """Judge each instance in both orders; returns per-instance records and model tokens processed."""
    strategy = STRATEGIES[config.strategy]
    if strategy.first_stage is not None:
        return _judge_swap(model, tokenizer, instances, config, strategy)
    if strategy.rating:
        return _judge_rating(model, tokenizer, instances, config, strategy)
    aux, tokens = _auxiliary_texts(model, tokenizer, instances, strategy, config.batch_size)
    prompts = []
    for x, extra in zip(instances, aux, strict=True):
        prompts.append(strategy.messages(x["input"], x["output_1"], x["output_2"], **extra))
        prompts.append(strategy.messages(x["input"], x["output_2"], x["output_1"], **extra))
    records = [{"label": x["label"], **({"auxiliary": extra} if extra else {})} for x, extra in zip(instances, aux, strict=True)]
    if config.method == "generate":
        texts, n_tok = greedy_generate(model, tokenizer, prompts, strategy.max_new_tokens, config.batch_size)
        tokens += n_tok
        for i, rec in enumerate(records):
            first, second = texts[2 * i].strip(), texts[2 * i + 1].strip()
            rec["completion_original"], rec["completion_swapped"] = first, second
            rec["choice_original"] = strategy.parse(first) or 0
            rec["choice_swapped"] = _flip(strategy.parse(second) or 0)
    else:
        lp_a, lp_b, n_tok = answer_logprobs(model, tokenizer, prompts, ("Output (a)", "Output (b)"), config.batch_size)
        tokens += n_tok
        for i, rec in enumerate(records):
            picks = [1 if lp_a[j] >= lp_b[j] else 2 for j in (2 * i, 2 * i + 1)]
            rec["logprob_original"] = [float(lp_a[2 * i]), float(lp_b[2 * i])]
            rec["logprob_swapped"] = [float(lp_a[2 * i + 1]), float(lp_b[2 * i + 1])]
            rec["choice_original"], rec["choice_swapped"] = picks[0], _flip(picks[1])
    return records, tokens


def _statistics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Statistics of judged records; for rating, `unparsed` counts the scores `int` could not read."""
    stats = llmbar_statistics([r["label"] for r in records], [r["choice_original"] for r in records],
                              [r["choice_swapped"] for r in records])
    if records and "score_1" in records[0]:
        stats["unparsed"] = sum((r["score_1"] is None) + (r["score_2"] is None) for r in records)
    return stats


def cache_key(config: LLMBarConfig, model_fp: str, data_hashes: dict[str, str]) -> str:
    """The step key of one LLMBar run: config, judge fingerprint and the data's hashes."""
    from selbench.store import step_key

    return step_key(STEP, VERSION, asdict(config), {"model": model_fp, "data": data_hashes})


def evaluate(model: Any, subset: str = "natural", *, strategy: str = "vanilla_rules", method: str = "generate",
             limit: int | None = None, batch_size: int = 8, data_dir: str | Path | None = None,
             store: Any = None) -> dict[str, Any]:
    """Run LLMBar on `model` (a model spec, or a loaded (model, tokenizer) pair); cached.

    Returns the headline statistics (`accuracy`, `agreement`, ...: the mean over the subset's sets;
    `accuracy_pooled`, `agreement_pooled`: over all instances; `unparsed`, `n`: totals), `per_set`
    statistics, and `cached`, `seconds`, `key`, `path` (the step folder holding `results.jsonl`).
    """
    started = time.time()
    loaded = isinstance(model, (tuple, list)) and len(model) == 2
    step = LLMBarStep("<in-memory>" if loaded else str(model), subset, strategy, method, limit, batch_size,
                      None if data_dir is None else str(data_dir), loaded=tuple(model) if loaded else None)
    step.sets()  # bad data fails before the model is fingerprinted
    from selbench.generation.cached import key_or_input_error

    key_or_input_error(step)
    result = step.run(store)
    stats = dict(result.stats)
    return {**stats, "subset": subset, "strategy": strategy, "method": method, "cached": result.cached,
            "seconds": round(time.time() - started, 3), "key": result.key, "path": str(result.path)}


@dataclass(frozen=True)
class LLMBarStep(ShardedStep):
    """The fine-tuned model as a pairwise evaluator on LLMBar: the `eval:llmbar` step (resumable by shards).

    Args:
        model: the judge's model spec (`"<in-memory>"` with `loaded`).
        subset, strategy, method, limit, batch_size: the `LLMBarConfig` fields (validated on construction).
        data_dir: LLMBar's data (a folder, an http(s) base URL or `hf://princeton-nlp/LLMBar`; None: the
            `resolve_data_dir` default).
        loaded: (not in the key, not pickled) an already-loaded (model, tokenizer) pair to judge with; the key
            then hashes its weights.

    Key: `asdict(LLMBarConfig)`, the judge's fingerprint (its files' hashes; a loaded pair's weights) and each
    set file's sha256 (`cache_key`). Outputs in the store folder: `results.jsonl` (one judged record per
    instance, with its `set`), `metrics.json` (headline statistics, `per_set`), `items.jsonl` (one row per
    instance: `item` = "<set>/<index in the set file>", `score` = correctness averaged over both orders
    (0, 0.5 or 1; its mean is `correct_average`), `set`, `label`, `choice_original`, `choice_swapped`). Shards
    of `SHARD_SIZE` instances in progress live in `partial/eval:llmbar/<key>/` (`ShardProgress`, JSON);
    sharded (`selbench.step.ShardedStep`): `run_shards` judges just the given shards.
    """

    model: str
    subset: str = "natural"
    strategy: str = "vanilla_rules"
    method: str = "generate"
    limit: int | None = None
    batch_size: int = 8
    data_dir: str | None = None
    loaded: tuple[Any, Any] | None = field(default=None, compare=False, repr=False)

    name: ClassVar[str] = STEP
    VERSION: ClassVar[int] = VERSION
    resources: ClassVar[Mapping[str, float]] = {"cpus": 2, "gpus": 0, "memory_gb": 8}

    def __post_init__(self) -> None:
        self.llmbar_config  # noqa: B018 - validates the options

    def __getstate__(self) -> dict[str, Any]:  # never ship a loaded model or the loaded sets
        state = {k: v for k, v in self.__dict__.items() if k != "_sets"}
        state["loaded"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    @property
    def llmbar_config(self) -> LLMBarConfig:
        return LLMBarConfig(subset=self.subset, strategy=self.strategy, method=self.method, limit=self.limit,
                            batch_size=self.batch_size)

    def sets(self) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
        """({set: instances, cut at `limit`}, {set: sha256 of its file}), read once per step object."""
        cached = self.__dict__.get("_sets")
        if cached is None:
            sets, hashes = load_llmbar(self.subset, self.data_dir)
            if self.limit is not None:
                sets = {name: rows[: self.limit] for name, rows in sets.items()}
            cached = (sets, hashes)
            object.__setattr__(self, "_sets", cached)
        return cached

    def config(self) -> dict[str, Any]:
        return asdict(self.llmbar_config)

    def inputs(self) -> dict[str, Any]:
        from selbench.generation.cached import model_fingerprint_when_ready
        from selbench.hashing import sha256_json

        if self.loaded is not None:
            fingerprint = loaded_model_fingerprint(*self.loaded)
        else:
            fingerprint = sha256_json(model_fingerprint_when_ready(self.model))
        return {"model": fingerprint, "data": self.sets()[1]}

    def describe(self) -> str:
        return f"llmbar {self.subset} with {Path(self.model).name}" + (f" (limit {self.limit})" if self.limit else "")

    def _instances(self) -> list[dict[str, Any]]:
        """Every instance judged, set after set, each with its `set`."""
        sets = self.sets()[0]
        return [dict(x, set=name) for name in sets for x in sets[name]]

    def shard_progress(self, store: StepStore) -> ShardProgress:
        return ShardProgress(store.partial_dir(STEP, self.key()), len(self._instances()), SHARD_SIZE, fmt="json")

    def shard_computer(self, store: StepStore, shards: ShardProgress) -> Callable[[int, range], dict[str, Any]]:
        """Judges one shard's instances in both orders; the judge is loaded on the first call."""
        config = self.llmbar_config
        flat = self._instances()
        judge_with: list[Any] = []

        def judge_shard(number: int, items: range) -> dict[str, Any]:
            started = time.perf_counter()
            if not judge_with:  # loaded only when some shard is left to judge
                judge_with.extend(self.loaded or load_judge(self.model))
            chunk = flat[items.start : items.stop]
            records, n_tok = judge(*judge_with, chunk, config)
            for rec, x in zip(records, chunk, strict=True):
                rec["set"] = x["set"]
            return {"records": records, "tokens": n_tok, "seconds": time.perf_counter() - started}

        return judge_shard

    def compute(self, tmp: Path, store: StepStore) -> dict[str, Any]:
        from selbench.cost import CostMeter
        from selbench.store import write_json_atomic, write_text_atomic

        sets = self.sets()[0]
        shards = self.shard_progress(store)
        judge_shard = self.shard_computer(store, shards)
        done_before = [i for i in range(shards.n_shards) if shards.done(i)]
        with CostMeter(STEP) as meter:
            shards.run(judge_shard, desc=f"llmbar {self.subset}")
            pooled: list[dict[str, Any]] = []
            tokens = 0
            for number in range(shards.n_shards):
                payload = shards.load(number)
                pooled.extend(payload["records"])
                tokens += int(payload.get("tokens", 0))
                if number in done_before:  # judged by an earlier (killed) run or another worker: charged once, here
                    meter.add_seconds(float(payload.get("seconds", 0.0)))
            meter.add_tokens(tokens)
        write_text_atomic(tmp / "results.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pooled))
        per_set = {name: _statistics([r for r in pooled if r["set"] == name]) for name in sets}
        metrics = {**combine_sets(per_set), "per_set": per_set}
        write_json_atomic(tmp / METRICS_FILE, metrics)
        position = {name: 0 for name in sets}
        items = []
        for rec in pooled:
            index, position[rec["set"]] = position[rec["set"]], position[rec["set"]] + 1
            correct = [rec["choice_original"] == rec["label"], rec["choice_swapped"] == rec["label"]]
            items.append({"item": f"{rec['set']}/{index}", "score": sum(correct) / 2, "set": rec["set"],
                          "label": rec["label"], "choice_original": rec["choice_original"],
                          "choice_swapped": rec["choice_swapped"]})
        write_items(tmp, items)
        spec = "<in-memory>" if self.loaded is not None else self.model
        return {**metrics, "tokens": tokens, "model_spec": spec, "cost": meter.record.to_dict()}

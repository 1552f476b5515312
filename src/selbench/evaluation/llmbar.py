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

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from selbench.errors import InputError
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
from selbench.hashing import sha256_file

log = logging.getLogger(__name__)

STEP = "eval:llmbar"
VERSION = 3  # 2: kappa statistics added; 3: multi-set headline is the mean of the sets, *_pooled added
METHODS = ("generate", "logprob")
DATA_ENV = "SELBENCH_LLMBAR_DIR"
SHARD_SIZE = 25  # instances judged (both orders) between progress saves
HUB_DATASET = "princeton-nlp/LLMBar"
# `hf://princeton-nlp/LLMBar` is a loading-script dataset (which datasets>=4 no longer runs); its script
# reads these files, so we read them directly (same bytes as the reference repo's Dataset/LLMBar/).
REMOTE_BASE = "https://raw.githubusercontent.com/princeton-nlp/LLMBar/main/Dataset/LLMBar/"
DOWNLOAD_TIMEOUT_S = 30
# Set name -> folder under the data dir (layout of the reference repo's `Dataset/LLMBar/`).
SET_FOLDERS = {
    "Natural": "Natural",
    "GPTInst": "Adversarial/GPTInst",
    "GPTOut": "Adversarial/GPTOut",
    "Manual": "Adversarial/Manual",
    "Neighbor": "Adversarial/Neighbor",
}
SUBSETS = {"natural": ("Natural",), "adversarial": ("GPTInst", "GPTOut", "Manual", "Neighbor")}


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


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | str:
    """Where the sets come from: a folder, or an http(s) base URL with the same layout.

    Order: `data_dir`, else $SELBENCH_LLMBAR_DIR, else `llmbar/` in the shared data folders
    (`selbench.assets.shared`: $SELBENCH_SHARED_DATA, then beside the checkout; never relative to the working
    directory), else `REMOTE_BASE` (the files `hf://princeton-nlp/LLMBar` itself loads; that spec names it
    too) unless the hub is switched off (`HF_HUB_OFFLINE`), which is an InputError saying where it looked.
    """
    from selbench.assets.shared import describe_search, find_shared, hub_offline

    for value, field in ((data_dir, "data-dir"), (os.environ.get(DATA_ENV) or None, DATA_ENV)):
        if value is None:
            continue
        if str(value).rstrip("/") == f"hf://{HUB_DATASET}":
            return REMOTE_BASE
        if str(value).startswith(("http://", "https://")):
            return str(value).rstrip("/") + "/"
        path = Path(value)
        if not path.is_dir():
            raise InputError("LLMBar data folder not found", path=str(path), field=field)
        return path
    shared = find_shared("llmbar")
    if shared is not None and shared.is_dir():
        return shared
    if hub_offline():
        raise InputError(f"LLMBar data not found; looked in ${DATA_ENV} (unset) and {describe_search('llmbar')}; the "
                         f"hub is switched off (HF_HUB_OFFLINE), so hf://{HUB_DATASET} is not downloaded: pass "
                         "--data-dir or set $SELBENCH_SHARED_DATA", field="data-dir")
    log.info("no local LLMBar copy (looked in %s); reading hf://%s", describe_search("llmbar"), HUB_DATASET)
    return REMOTE_BASE


def _download_set(url: str) -> Path:
    """`url`'s bytes in the download cache ($SELBENCH_CACHE/downloads/llmbar), fetched once, atomically."""
    import urllib.error
    import urllib.request

    from selbench.store import cache_root

    target = cache_root() / "downloads" / "llmbar" / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.json"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:  # noqa: S310 - http(s) only
            body = response.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        from selbench.assets.shared import describe_search

        raise InputError(f"cannot download LLMBar data ({reason}); no local copy in ${DATA_ENV} or "
                         f"{describe_search('llmbar')}: pass --data-dir or set ${DATA_ENV} to a copy of LLMBar's "
                         "Dataset/LLMBar folder", path=url, field="data-dir") from None
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_bytes(body)
    os.replace(tmp, target)
    return target


def _read_set(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError("LLMBar set file not found", path=str(path))
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=str(path), line=exc.lineno) from None
    except RecursionError:
        raise InputError("not valid JSON here: nested too deeply to parse", path=str(path)) from None
    if not isinstance(rows, list):
        raise InputError("expected a JSON list of instances", path=str(path))
    for number, row in enumerate(rows, start=1):  # records numbered from 1, as every other input
        where = {"path": str(path), "line": number}
        if not isinstance(row, dict):
            raise InputError("expected an object", **where)
        for key in ("input", "output_1", "output_2"):
            if not isinstance(row.get(key), str):
                raise InputError("missing or not a string", field=key, **where)
        if row.get("label") not in (1, 2, "1", "2"):
            raise InputError(f"label {row.get('label')!r} must be 1 or 2", field="label", **where)
    return [{"input": r["input"], "output_1": r["output_1"], "output_2": r["output_2"], "label": int(r["label"])}
            for r in rows]


def load_llmbar(subset: str, data_dir: str | Path | None = None) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """The subset's sets as {set name: instances} and {set name: sha256 of its source}."""
    if subset not in SUBSETS:
        raise InputError(f"subset {subset!r} is not one of {sorted(SUBSETS)}", field="subset")
    root = resolve_data_dir(data_dir)
    sets, hashes = {}, {}
    for name in SUBSETS[subset]:
        if isinstance(root, Path):
            path = root / SET_FOLDERS[name] / "dataset.json"
            sets[name] = _read_set(path)
        else:
            url = f"{root}{SET_FOLDERS[name]}/dataset.json"
            path = _download_set(url)
            try:
                sets[name] = _read_set(path)
            except InputError as exc:  # a bad download: drop it so the next run fetches again
                path.unlink(missing_ok=True)
                raise InputError(f"not an LLMBar set ({exc})", path=url, field="data-dir") from None
        hashes[name] = sha256_file(path)  # same bytes, same hash: local and downloaded copies share caches
    return sets, hashes


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
    from selbench.cost import CostMeter
    from selbench.store import StepStore, write_text_atomic

    config = LLMBarConfig(subset=subset, strategy=strategy, method=method, limit=limit, batch_size=batch_size)
    sets, hashes = load_llmbar(subset, data_dir)
    if limit is not None:
        sets = {name: rows[:limit] for name, rows in sets.items()}
    spec, fingerprint = model_identity(model)
    inputs = {"model": fingerprint, "data": hashes}
    store = store or StepStore()
    key = cache_key(config, fingerprint, hashes)
    started = time.time()

    def compute(tmp: Path) -> dict[str, Any]:
        judge_model, tokenizer = load_judge(model)
        flat = [dict(x, set=name) for name in sets for x in sets[name]]
        partial = store.partial_dir(STEP, key)
        pooled: list[dict[str, Any]] = []
        tokens = 0
        with CostMeter(STEP) as meter:
            # Shards of instances, each saved when judged, so an interrupted run resumes where it stopped.
            for start in range(0, len(flat), SHARD_SIZE):
                shard_file = partial / f"shard-{start // SHARD_SIZE:05d}.jsonl"
                if shard_file.is_file():
                    pooled.extend(json.loads(line) for line in shard_file.read_text(encoding="utf-8").splitlines())
                    continue
                chunk = flat[start:start + SHARD_SIZE]
                records, n_tok = judge(judge_model, tokenizer, chunk, config)
                tokens += n_tok
                for rec, x in zip(records, chunk, strict=True):
                    rec["set"] = x["set"]
                write_text_atomic(shard_file, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
                pooled.extend(records)
                log.info("llmbar: %d/%d instances judged", min(start + SHARD_SIZE, len(flat)), len(flat))
            meter.add_tokens(tokens)
        write_text_atomic(tmp / "results.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pooled))
        per_set = {name: _statistics([r for r in pooled if r["set"] == name]) for name in sets}
        return {**combine_sets(per_set), "per_set": per_set, "tokens": tokens, "model_spec": spec,
                "cost": meter.record.to_dict()}

    result = store.run(STEP, VERSION, asdict(config), inputs, compute)
    stats = dict(result.stats)
    return {**stats, "subset": subset, "strategy": strategy, "method": method, "cached": result.cached,
            "seconds": round(time.time() - started, 3), "key": result.key, "path": str(result.path)}

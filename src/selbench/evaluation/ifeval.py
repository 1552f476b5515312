"""IFEval: verifiable instruction following (Zhou et al., 2023, https://arxiv.org/abs/2311.07911).

Scoring follows google-research `instruction_following_eval/evaluation_lib.py`:

* strict: an instruction is followed when the response is not blank and its checker accepts the raw
  response;
* loose: followed when any of eight variants is accepted (the response; without its first line; without
  its last line; without both; and each of those four with every `*` removed; the three line-cut
  variants are stripped), and a blank variant never counts;
* prompt-level accuracy: the fraction of prompts whose instructions are all followed; instruction-level
  accuracy: the fraction of all instructions followed (pooled over prompts, not averaged per prompt).

The checkers themselves are lm-eval-harness's copy (`lm_eval/tasks/ifeval/instructions*.py`; compared
function by function with google-research's, the registered checkers differ only in logging and style,
the two unregistered classes `RephraseChecker` / `KeySentenceChecker` in more) with one correction, so
that we compute what today's official code computes:

* `keywords:letter_frequency`: the official checker originally replaced any `letter` argument that is not
  an ASCII letter with a *random* letter; two prompts ask for `#` and `!`, so the paper's table came from
  one random draw. Upstream then accepted any single character, counted literally. lm-eval still has the
  old random draw; we use the current official rule (`_LetterFrequencyChecker`).

Also: langdetect (used by the language and letter-case checkers) is seeded with 0 so scores are
reproducible run to run; the official code leaves it unseeded. Sentence counting uses NLTK's English
Punkt, made available offline by `selbench.assets.punkt.ensure_punkt`.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from selbench.errors import InputError
from selbench.evaluation.base import METRICS_FILE, read_items, write_items
from selbench.evaluation.ifeval_data import (
    IFEvalPrompt,
    join_responses,
    load_prompts,
    read_responses,
    write_responses,
)
from selbench.step import InputsNotReady, Step

log = logging.getLogger(__name__)

BENCHMARK = "ifeval"
STEP = "eval:ifeval"
VERSION = 1
RESPONSES_FILE = "responses.jsonl"
HEADLINE = ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose", "n", "n_instructions")


def response_variants(response: str) -> list[str]:
    """The eight responses the loose criterion tries, in the official order.

    >>> response_variants("Sure!\\n*a*\\nbye")[:5]
    ['Sure!\\n*a*\\nbye', 'Sure!\\na\\nbye', '*a*\\nbye', 'Sure!\\n*a*', '*a*']
    """
    lines = response.split("\n")
    no_first = "\n".join(lines[1:]).strip()
    no_last = "\n".join(lines[:-1]).strip()
    no_both = "\n".join(lines[1:-1]).strip()
    return [
        response,
        response.replace("*", ""),
        no_first,
        no_last,
        no_both,
        no_first.replace("*", ""),
        no_last.replace("*", ""),
        no_both.replace("*", ""),
    ]


@functools.lru_cache(maxsize=1)
def instruction_registry() -> dict[str, type]:
    """Instruction id -> checker class: lm-eval's registry with the letter-frequency correction."""
    from selbench.assets.punkt import ensure_punkt

    ensure_punkt()  # before the import: lm-eval's import-time `nltk.download` is skipped when punkt_tab exists
    import langdetect
    from lm_eval.tasks.ifeval import instructions, instructions_registry

    langdetect.DetectorFactory.seed = 0
    # The language checkers log every undetectable response at ERROR (and count it as followed, as official).
    logging.getLogger(instructions.__name__).setLevel(logging.CRITICAL)

    class _LetterFrequencyChecker(instructions.LetterFrequencyChecker):
        """Today's official rule: any single character is counted literally; only a missing or longer
        `letter` draws a random one (google-research `instructions.py`, LetterFrequencyChecker)."""

        def build_description(self, *, letter=None, let_frequency=None, let_relation=None):
            if letter and len(letter) == 1:
                description = super().build_description(letter="a", let_frequency=let_frequency,
                                                        let_relation=let_relation)
                self._letter = letter.strip().lower()
                return description.replace("letter a ", f"letter {self._letter} ", 1)
            return super().build_description(letter=letter, let_frequency=let_frequency, let_relation=let_relation)

    registry = dict(instructions_registry.INSTRUCTION_DICT)
    registry["keywords:letter_frequency"] = _LetterFrequencyChecker
    return registry


def _build_checkers(prompt: IFEvalPrompt) -> list[Any]:
    """One built checker per instruction; bad ids or arguments are an InputError naming the prompt's line."""
    registry = instruction_registry()
    checkers = []
    for index, instruction_id in enumerate(prompt.instruction_id_list):
        if instruction_id not in registry:
            raise InputError(f"unknown IFEval instruction {instruction_id!r} in prompt key {prompt.key}",
                             path=prompt.source, line=prompt.line, field="instruction_id_list")
        checker = registry[instruction_id](instruction_id)
        # The checkers reject bad arguments with TypeError (unknown name, a string where a number is
        # compared) or ValueError (e.g. a `relation` other than "less than" / "at least").
        try:
            checker.build_description(**prompt.kwargs[index])
            args = checker.get_instruction_args()
            if args and "prompt" in args:  # as official: checkers that need the prompt are rebuilt with it
                checker.build_description(prompt=prompt.prompt)
        except (TypeError, ValueError, KeyError) as exc:
            raise InputError(f"prompt key {prompt.key}: bad arguments for {instruction_id}: {exc}",
                             path=prompt.source, line=prompt.line, field="kwargs") from None
        checkers.append(checker)
    return checkers


def check_prompts(prompts: Sequence[IFEvalPrompt]) -> None:
    """Build every prompt's checkers once, so a bad prompts file fails before any (costly) generation.

    Raises:
        InputError: the first unknown instruction id or bad argument, naming the prompts file and line.
    """
    for prompt in prompts:
        _build_checkers(prompt)


def follow_instructions(prompt: IFEvalPrompt, response: str) -> tuple[list[bool], list[bool]]:
    """(strict, loose) followed-or-not, one per instruction of `prompt`."""
    checkers = _build_checkers(prompt)
    strict = [bool(response.strip() and checker.check_following(response)) for checker in checkers]
    variants = response_variants(response)
    loose = [any(v.strip() and checker.check_following(v) for v in variants) for checker in checkers]
    return strict, loose


def aggregate(
    instruction_ids: Sequence[Sequence[str]], strict: Sequence[Sequence[bool]], loose: Sequence[Sequence[bool]]
) -> dict[str, Any]:
    """IFEval's four accuracies (fractions in [0, 1]) and per-instruction breakdowns.

    >>> r = aggregate([["a:x", "b:y"], ["a:x"]], [[True, False], [True]], [[True, True], [True]])
    >>> r["prompt_strict"], r["inst_strict"], r["prompt_loose"], r["inst_loose"]
    (0.5, 0.6666666666666666, 1.0, 1.0)
    """
    n = len(instruction_ids)
    if n == 0:
        raise ValueError("IFEval aggregate: no prompts to score")
    n_inst = sum(len(ids) for ids in instruction_ids)
    per_id: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # n, strict, loose
    per_category: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for ids, s_list, l_list in zip(instruction_ids, strict, loose, strict=True):
        for instruction_id, s, loose_ok in zip(ids, s_list, l_list, strict=True):
            for table, name in ((per_id, instruction_id), (per_category, instruction_id.split(":")[0])):
                table[name][0] += 1
                table[name][1] += int(s)
                table[name][2] += int(loose_ok)

    def _table(counts: dict[str, list[int]]) -> dict[str, dict[str, float]]:
        return {k: {"n": c[0], "strict": c[1] / c[0], "loose": c[2] / c[0]} for k, c in sorted(counts.items())}

    return {
        "prompt_strict": sum(all(s) for s in strict) / n,
        "inst_strict": sum(sum(s) for s in strict) / n_inst,
        "prompt_loose": sum(all(x) for x in loose) / n,
        "inst_loose": sum(sum(x) for x in loose) / n_inst,
        "n": n,
        "n_instructions": n_inst,
        "per_instruction": _table(per_id),
        "per_category": _table(per_category),
    }


def score_ifeval(prompts: Sequence[IFEvalPrompt], responses: Sequence[str]) -> dict[str, Any]:
    """Score responses, one per prompt, as the IFEval authors do.

    Args:
        prompts: the prompts (e.g. `load_prompts()`), in any order.
        responses: the model's response to each prompt, same order.

    Returns:
        `prompt_strict`, `inst_strict`, `prompt_loose`, `inst_loose` (fractions), `n`, `n_instructions`,
        `per_instruction` / `per_category` ({id: {n, strict, loose}}) and `rows` (per prompt: key,
        strict and loose lists).
    """
    if len(prompts) != len(responses):
        raise ValueError(f"score_ifeval: {len(prompts)} prompts but {len(responses)} responses")
    strict_all, loose_all, rows = [], [], []
    for prompt, response in zip(prompts, responses, strict=True):
        strict, loose = follow_instructions(prompt, response)
        strict_all.append(strict)
        loose_all.append(loose)
        rows.append({"key": prompt.key, "instruction_id_list": list(prompt.instruction_id_list),
                     "strict": strict, "loose": loose})
    result = aggregate([p.instruction_id_list for p in prompts], strict_all, loose_all)
    result["rows"] = rows
    return result


def evaluate(
    *,
    responses: str | Path | Mapping[str, str] | None = None,
    model: str | None = None,
    prompts: str | Path | None = None,
    limit: int | None = None,
    allow_missing: bool = False,
    generation: Any = None,
    backend: str = "hf",
    out: str | Path | None = None,
    store: Any = None,
    progress: bool = False,
    backend_options: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """IFEval end to end: score given responses, or generate them with `model` first.

    Args:
        responses: a JSONL file (rows `prompt`, `response`) or a `prompt -> response` mapping.
        model: a model spec (`selbench.assets.load_model`); its responses are generated (and cached).
        prompts: prompt set (default: the packaged 541; a JSONL path or `hf://google/IFEval`).
        limit: score only the first K prompts (with `model`).
        allow_missing: with `responses`, score only the prompts that have one.
        generation: a `GenerationConfig` (default: greedy, 1024 new tokens).
        backend: generation backend name ("hf", "vllm" or "openai").
        backend_options: the openai backend's `base_url` / `served_model`.
        out: a folder to write `responses.jsonl` and `scores.json` into.
        store: the `StepStore` (default: `$SELBENCH_CACHE`).
        progress: show a progress bar while generating.

    Returns:
        The `score_ifeval` result (without `rows`, which go to `out/scores.json`) plus `model` / `responses`.
    """
    if (responses is None) == (model is None):
        raise InputError("give exactly one of responses or model", field="responses")
    if limit is not None and limit < 1:
        raise InputError(f"{limit} is not >= 1", field="limit")
    if isinstance(responses, Mapping):  # responses in memory: scored here, not a store step (no file to key)
        prompt_set = load_prompts(prompts)
        check_prompts(prompt_set)
        kept, texts = join_responses(prompt_set, dict(responses), allow_missing=allow_missing)
        if limit is not None:
            kept, texts = kept[:limit], texts[:limit]
        result = score_ifeval(kept, texts)
        rows = result.pop("rows")
        extra: dict[str, Any] = {"responses": "<mapping>"}
    else:
        step = IFEvalStep(model=None if model is None else str(model),
                          responses=None if responses is None else str(responses),
                          prompts=None if prompts is None else str(prompts), limit=limit, allow_missing=allow_missing,
                          generation=generation, backend=backend, progress=progress,
                          backend_options=tuple(sorted(dict(backend_options or {}).items())))
        step.check()  # bad prompts or responses fail here, before any generation
        from selbench.generation.cached import key_or_input_error

        key_or_input_error(step)
        done = step.run(store)
        kept, texts = None, None
        result = json.loads((done.path / METRICS_FILE).read_text(encoding="utf-8"))
        rows = [{k: item[k] for k in ("key", "instruction_id_list", "strict", "loose")}
                for item in read_items(done.path)]
        if model is not None:
            extra = {"model": str(model), "generation_key": done.stats["generation_key"],
                     "generation_cached": done.cached or done.stats["generation_cached"]}
        else:
            extra = {"responses": str(responses)}
    if out is not None:
        from selbench.store import write_json_atomic, write_text_atomic

        out = Path(out)
        if kept is not None:
            write_responses(out / "responses.jsonl", kept, texts)
        else:
            write_text_atomic(out / "responses.jsonl", (done.path / RESPONSES_FILE).read_text(encoding="utf-8"))
        write_json_atomic(out / "scores.json", {**result, **extra, "rows": rows})
        extra["out"] = str(out)
    return {**result, **extra}


@dataclass(frozen=True)
class IFEvalStep(Step):
    """IFEval on a model's generated responses (or on a responses file): the `eval:ifeval` step.

    Args:
        model: model spec whose responses are generated (a `GenerateStep` inside this one); or None.
        responses: a responses JSONL file (rows `prompt`, `response`) to score instead; or None.
        prompts: prompt set: None (the packaged 541), a JSONL path, or `hf://google/IFEval`.
        limit: score only the first K prompts.
        allow_missing: with `responses`, score only the prompts that have one.
        generation: the `GenerationConfig` (None: greedy, 1024 new tokens).
        backend: generation backend name.
        progress: (not in the key) progress bars while generating.
        backend_options: (not in the key) the openai backend's options, as (name, value) pairs.

    Key: the prompt set's content (ids, texts, instruction ids and arguments), `limit`, `allow_missing`, and
    either the generate step's key (model fingerprint, prompts, decoding, backend) or the responses file's
    sha256. Outputs in the store folder: `metrics.json` (`prompt_strict`, `inst_strict`, `prompt_loose`,
    `inst_loose`, `n`, `n_instructions`, per instruction and category), `items.jsonl` (one row per prompt:
    `item` = the prompt's key as a string, `score` = prompt-level strict accuracy 0/1, `prompt_loose`, and
    `key`, `instruction_id_list`, `strict`, `loose` per instruction) and `responses.jsonl` (official format).
    """

    model: str | None = None
    responses: str | None = None
    prompts: str | None = None
    limit: int | None = None
    allow_missing: bool = False
    generation: Any = None
    backend: str = "hf"
    progress: bool = field(default=False, compare=False)
    backend_options: tuple[tuple[str, Any], ...] = field(default=(), compare=False)

    name: ClassVar[str] = STEP
    VERSION: ClassVar[int] = VERSION
    resources: ClassVar[Mapping[str, float]] = {"cpus": 2, "gpus": 0, "memory_gb": 8}

    def __post_init__(self) -> None:
        if (self.model is None) == (self.responses is None):
            raise InputError("give exactly one of responses or model", field="responses")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise InputError(f"{self.limit} is not >= 1", field="limit")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_prompts"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def prompt_set(self) -> list[IFEvalPrompt]:
        """The prompts, loaded and checked once per step object."""
        cached = self.__dict__.get("_prompts")
        if cached is None:
            cached = load_prompts(self.prompts)
            check_prompts(cached)
            object.__setattr__(self, "_prompts", cached)
        return cached

    def check(self) -> None:
        """Bad prompts or a bad responses file: InputError naming file, line and field."""
        self.joined()

    def joined(self) -> tuple[list[IFEvalPrompt], list[str] | None]:
        """(the prompts scored, their responses; None when they are to be generated)."""
        prompt_set = self.prompt_set()
        if self.responses is None:
            return prompt_set[: self.limit] if self.limit is not None else prompt_set, None
        path = Path(self.responses)
        kept, texts = join_responses(prompt_set, read_responses(path), path=path, allow_missing=self.allow_missing)
        if self.limit is not None:
            kept, texts = kept[: self.limit], texts[: self.limit]
        return kept, texts

    def generate_step(self) -> Any:
        from selbench.generation.base import GenerationConfig
        from selbench.generation.cached import GenerateStep

        kept = self.joined()[0]
        config = self.generation if self.generation is not None else GenerationConfig.greedy(max_new_tokens=1024)
        return GenerateStep.make(str(self.model), BENCHMARK, [p.messages for p in kept], config,
                                 backend=self.backend, progress=self.progress, backend_options=dict(self.backend_options))

    def config(self) -> dict[str, Any]:
        from selbench.hashing import sha256_json

        records = [[p.key, p.prompt, list(p.instruction_id_list), list(p.kwargs)] for p in self.prompt_set()]
        return {"prompts_sha256": sha256_json(records), "limit": self.limit, "allow_missing": self.allow_missing}

    def inputs(self) -> dict[str, Any]:
        if self.responses is not None:
            from selbench.hashing import sha256_file

            if not Path(self.responses).is_file():
                raise InputsNotReady(f"responses {self.responses} do not exist yet")
            return {"responses_sha256": sha256_file(self.responses)}
        return {"generation": self.generate_step().key()}

    def describe(self) -> str:
        return f"ifeval {Path(self.model or self.responses or '').name}" + (f" (limit {self.limit})" if self.limit else "")

    def compute(self, tmp: Path, store: Any) -> dict[str, Any]:
        from selbench.cost import CostMeter
        from selbench.store import write_json_atomic

        kept, texts = self.joined()
        stats: dict[str, Any] = {}
        if texts is None:
            from selbench.generation.cached import read_outputs

            generated = self.generate_step().run(store)
            texts = read_outputs(generated.path)
            stats = {"generation_key": generated.key, "generation_cached": generated.cached}
        with CostMeter(STEP) as meter:
            result = score_ifeval(kept, texts)
        rows = result.pop("rows")
        items = [{"item": str(row["key"]), "score": float(all(row["strict"])), "prompt_loose": float(all(row["loose"])),
                  **row} for row in rows]
        write_json_atomic(tmp / METRICS_FILE, result)
        write_items(tmp, items)
        write_responses(tmp / RESPONSES_FILE, kept, texts)
        return {**{k: result[k] for k in HEADLINE}, **stats, "cost": meter.record.to_dict()}

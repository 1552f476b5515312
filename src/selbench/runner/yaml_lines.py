"""YAML with the line of every key, and pydantic errors as one line that names it.

`compose` parses with `yaml.SafeLoader` (no arbitrary objects); `key_lines` maps every mapping key's location
(a tuple such as `("datasets", "pool", "limit")`) to its 1-based line and refuses repeated keys (PyYAML would
silently keep the last); `line_of` finds the line of a pydantic error location, whose union branch names
(`list[int]`, `bool`) the file does not have; `pydantic_message` words the error for a person.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from selbench.errors import InputError


class _LineLoader(yaml.SafeLoader):
    """SafeLoader; `compose_node` is used to keep each key's line."""


def compose(text: str, path: Path) -> yaml.Node | None:
    """The YAML node tree of `text` (None when empty); InputError naming `path` and the line when invalid."""
    try:
        return yaml.compose(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError(f"not valid YAML: {problem}", path=path, line=line) from None


def key_lines(node: yaml.Node | None, path: Path, prefix: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], int]:
    """1-based line of every mapping key (and sequence item), by its location; repeated keys are an error."""
    lines: dict[tuple[Any, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                raise InputError(f"key {key!r} repeats line {seen[key]}", path=path, line=line,
                                 field=".".join(str(p) for p in (*prefix, key)))
            seen[key] = line
            lines[(*prefix, key)] = line
            lines.update(key_lines(value_node, path, (*prefix, key)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*prefix, index)] = item.start_mark.line + 1
            lines.update(key_lines(item, path, (*prefix, index)))
    return lines


def line_of(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    """The line of the longest prefix of `loc` that is in the file (pydantic locations may add union
    branch names such as `list[int]`, which the file does not have).

    >>> line_of(("random", "strict", "list[int]", 1), {("random",): 3, ("random", "strict"): 4})
    4
    """
    parts = [p for p in loc if not (isinstance(p, str) and ("[" in p or p in ("bool", "int", "str", "float")))]
    for end in range(len(parts), 0, -1):
        line = lines.get(tuple(parts[:end]))
        if line is not None:
            return line
    return None


def pydantic_message(error: dict[str, Any]) -> str:
    """One pydantic error (from `ValidationError.errors()`) in words, with the value when it is short."""
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return "unknown key (not allowed here; check its spelling)"
    if error["type"] == "missing":
        return "required key is missing"
    value = error.get("input")
    if error["type"] not in ("value_error",) and not isinstance(value, (dict, list)):
        message = f"{message} (got {value!r})"
    return message

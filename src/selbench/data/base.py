"""Loader protocol and registry: one module per source, each turning raw records into `Example`s.

A loader is called as `loader(path, config)` and streams `(line, item)` pairs, where `item` is an
`Example` or a `Dropped` record and `line` is the 1-based line of the file where the record starts (JSONL
line, first line of a JSON array element, or Parquet / 🤗 dataset row number). Carrying the line with every
record lets `prepare` name FILE:LINE and field for any problem, and count drops by reason.

Built-in sources register lazily as "module:attr" strings (importing a loader never imports torch);
outside packages add sources through the `selbench.loaders` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from selbench.data.schema import Example
from selbench.registry import Registry

DEFAULT_MAX_CHARS = 100_000
DEFAULT_MAX_PER_TASK = 50

# Drop reasons (manifest `dropped` keys). INVALID ones mean the input is not what it claims to be: they stop
# `prepare` unless --skip-invalid. The rest are filters, always dropped and counted: a source's own, and
# exact duplicates (same content, so same id), which real instruction sets often hold.
MALFORMED_JSON = "malformed_json"
NON_UTF8 = "non_utf8"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
EMPTY_INSTRUCTION = "empty_instruction"
EMPTY_OUTPUT = "empty_output"
TOO_LONG = "too_long"
DUPLICATE = "duplicate"
TRUNCATED = "truncated"
INVALID_REASONS = frozenset(
    {MALFORMED_JSON, NON_UTF8, MISSING_FIELD, WRONG_TYPE, EMPTY_INSTRUCTION, EMPTY_OUTPUT, TOO_LONG, TRUNCATED}
)


@dataclass(frozen=True)
class Dropped:
    """A record that did not become an example, and why.

    Args:
        reason: one of the reason constants above (a source may add its own filter reasons).
        message: one human sentence on what is wrong.
        field: the source field at fault, when there is one.
        invalid: True when this is bad input (fatal unless --skip-invalid), False for a source filter.
    """

    reason: str
    message: str
    field: str | None = None
    invalid: bool = True


Item = tuple[int, "Example | Dropped"]


@dataclass(frozen=True)
class LoaderConfig:
    """Options shared by all loaders (all of them are part of the `prepare` step key).

    Args:
        max_per_task: FLAN only: keep at most this many examples per task (first ones in file order).
        field_map: jsonl/parquet/hf only: (canonical field, source field) pairs, e.g.
            (("instruction", "prompt"), ("output", "completion")).
        max_chars: records whose instruction + input + output + conversation exceed this many characters are
            invalid (absurdly long; usually a scraping accident).
    """

    max_per_task: int = DEFAULT_MAX_PER_TASK
    field_map: tuple[tuple[str, str], ...] = ()
    max_chars: int = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        if not isinstance(self.max_per_task, int) or self.max_per_task < 1:
            raise ValueError(f"max_per_task must be a positive integer, got {self.max_per_task!r}")
        if not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise ValueError(f"max_chars must be a positive integer, got {self.max_chars!r}")
        object.__setattr__(self, "field_map", tuple(tuple(pair) for pair in self.field_map))
        targets = [k for k, _ in self.field_map]
        if len(set(targets)) != len(targets):
            raise ValueError(f"field_map maps a field twice: {targets}")

    def mapping(self) -> dict[str, str]:
        return dict(self.field_map)

    def to_dict(self) -> dict[str, Any]:
        return {"max_per_task": self.max_per_task, "field_map": [list(p) for p in self.field_map], "max_chars": self.max_chars}


class LoaderFn(Protocol):
    """What `prepare` calls: any callable streaming `(line, Example | Dropped)`; plugins may register a
    plain function of this shape, built-ins register a `Loader` (which adds the shared checks)."""

    def __call__(self, path: str | Path, config: LoaderConfig) -> Iterator[Item]: ...


Converter = Callable[[Mapping[str, Any], LoaderConfig], "Example | Dropped"]


@dataclass(frozen=True)
class Loader:
    """A source: how one raw record (a dict) becomes an `Example`, plus source-level policies.

    Calling it streams `(line, Example | Dropped)` from a JSON / JSONL / Parquet file or an `hf://` dataset
    (see `selbench.data.reader.iter_records`), converted and validated.

    Args:
        name: registered name (== module name).
        convert: raw record -> Example or Dropped.
        lenient: invalid reasons this source always drops instead of failing on (ShareGPT's web scrape is
            known to contain duplicates, empty turns, and huge conversations).
        allow_truncated: accept a JSON array cut off mid-record (the packaged ShareGPT file is).
        per_task_cap: apply `config.max_per_task` per `task` (FLAN).
        fields: (canonical field, source field) pairs, so shared checks name the field as the file spells it.
    """

    name: str
    convert: Converter
    lenient: frozenset[str] = field(default_factory=frozenset)
    allow_truncated: bool = False
    per_task_cap: bool = False
    fields: tuple[tuple[str, str], ...] = ()

    def source_field(self, canonical: str | None, config: LoaderConfig) -> str | None:
        """How the input names the canonical field `canonical` (e.g. dolly's `output` is `response`)."""
        if canonical is None:
            return None
        return {**dict(self.fields), **config.mapping()}.get(canonical, canonical)

    def __call__(self, path: str | Path, config: LoaderConfig | None = None) -> Iterator[Item]:
        # Imported here: both modules import this one.
        from selbench.data.reader import iter_records
        from selbench.data.validate import validated

        raw = iter_records(path, allow_truncated=self.allow_truncated)
        return validated(self, raw, config or LoaderConfig())


LOADERS: Registry[Loader] = Registry("loader", "selbench.loaders")
for _name in ("alpaca", "dolly", "flan", "evol", "sharegpt", "jsonl", "parquet", "hf"):
    LOADERS.register(_name, f"selbench.data.{_name}:LOADER")


def get_loader(name: str) -> Loader:
    """The loader registered as `name` (KeyError with near-name suggestions otherwise)."""
    return LOADERS.get(name)

"""Name -> component registries, one per pipeline stage.

Built-ins register lazily as "module:attr" strings so that `selbench --help` never imports torch;
third-party packages plug in through entry points (group `selbench.<kind>`), not by editing selbench.
Pattern after lm-eval's `lm_eval/api/registry.py`: refuse duplicates, suggest near names for typos.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """A named catalogue of components of one kind (strategies, loaders, benchmarks...).

    Args:
        kind: human name of the component kind, used in messages ("strategy").
        entry_point_group: entry-point group scanned once for outside plugins.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._entries: dict[str, T | str] = {}
        self._plugins_loaded = False

    def register(self, name: str, obj: T | str | None = None) -> Callable[[T], T] | T | str:
        """Register `obj` under `name`; usable as a decorator when `obj` is omitted."""
        if obj is None:

            def decorator(target: T) -> T:
                self._add(name, target)
                return target

            return decorator
        self._add(name, obj)
        return obj

    def _add(self, name: str, obj: T | str) -> None:
        existing = self._entries.get(name)
        if existing is not None and existing is not obj:
            # A lazy string entry being replaced by the object it names is the normal import path.
            if isinstance(existing, str) and not isinstance(obj, str) and _qualname(obj) == existing:
                self._entries[name] = obj
                return
            raise ValueError(f"{self.kind} {name!r} is already registered ({existing!r})")
        self._entries[name] = obj

    def _load_plugins(self) -> None:
        if self._plugins_loaded or self.entry_point_group is None:
            self._plugins_loaded = True
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._entries:
                self._entries[ep.name] = ep.value

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """The component registered as `name`, importing it on first use."""
        self._load_plugins()
        if name not in self._entries:
            near = difflib.get_close_matches(name, list(self._entries), n=3)
            hint = f"; did you mean {', '.join(repr(n) for n in near)}?" if near else ""
            raise KeyError(f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})")
        entry = self._entries[name]
        if isinstance(entry, str):
            module_name, _, attr = entry.partition(":")
            obj: Any = importlib.import_module(module_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
            self._entries[name] = obj
            return obj
        return entry


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"

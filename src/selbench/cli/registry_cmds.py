"""Commands generated from the registries: one `selbench score <scorer>` / `selbench select <strategy>`
per registered member, with an option per field of its config dataclass.

A member's options come from its frozen dataclass: the field name (`max_overlap` -> `--max-overlap`), its
type (str, int, float, bool, their `| None` forms), its default, and its help text from the class
docstring's "Args:" section. So a new scorer or strategy, built in or from an entry point
(`selbench.scorers` / `selbench.strategies`), is one file + one register line + one test, and appears in
`--help` with its options (lm-eval's registry + generated CLI; data-juicer's per-op configs).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from selbench.cli.common import JsonOption, handle_errors

_SIMPLE = (str, int, float, bool, Path)
# Options every select/score command has; a member's field may not reuse these names.
SELECT_COMMON = ("data", "budget", "seed", "out", "against", "prices", "as_json")
SCORE_COMMON = ("data", "out", "prices", "as_json")


def field_help(cls: type) -> dict[str, str]:
    """Field name -> help text, from the class docstring's "Args:" section (continuation lines joined).

    >>> class C:
    ...     '''Args:
    ...         unit: the length unit,
    ...             chars or tokens.
    ...         model: a model spec.
    ...     '''
    >>> field_help(C)
    {'unit': 'the length unit, chars or tokens.', 'model': 'a model spec.'}
    """
    doc = inspect.getdoc(cls) or ""
    out: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in doc.splitlines():
        stripped = line.strip()
        if re.fullmatch(r"(Args|Arguments|Parameters|Attributes):", stripped):
            in_args, current = True, None
            continue
        if re.fullmatch(r"(Returns|Raises|Yields|Examples?|Notes?|See Also|References?):", stripped):
            in_args, current = False, None
            continue
        if not in_args:
            continue
        match = re.match(r"^(\w+)(?:\s*\([^)]*\))?:\s*(.*)$", stripped)
        indent = len(line) - len(line.lstrip())
        if match and (current is None or indent <= _indent_of(doc, current)):
            current = match.group(1)
            out[current] = match.group(2)
        elif stripped and current is not None:
            out[current] = f"{out[current]} {stripped}".strip()
        elif not stripped and current is not None:
            current = None
    return out


def _indent_of(doc: str, name: str) -> int:
    for line in doc.splitlines():
        if re.match(rf"^\s*{name}(\s*\([^)]*\))?:", line):
            return len(line) - len(line.lstrip())
    return 0


def _option_type(annotation: Any) -> tuple[Any, bool]:
    """(click-able type, optional?) of a dataclass field annotation; ValueError for unsupported types."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and args[0] in _SIMPLE:
            return args[0], True
    if annotation in _SIMPLE:
        return annotation, False
    if origin is typing.Literal:
        return str, False
    raise ValueError(f"unsupported option type {annotation!r}")


def config_options(cls: type, reserved: tuple[str, ...]) -> list[inspect.Parameter]:
    """One typer option per dataclass field of `cls` (fields of unsupported types are left out)."""
    if not dataclasses.is_dataclass(cls):
        return []
    hints = typing.get_type_hints(cls)
    helps = field_help(cls)
    params = []
    for f in dataclasses.fields(cls):
        if not f.init or f.name.startswith("_"):
            continue
        if f.name in reserved:
            raise ValueError(f"{cls.__name__}: field {f.name!r} clashes with a common option of the command")
        try:
            kind, optional = _option_type(hints[f.name])
        except ValueError:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        else:
            default = ...
        flag = "--" + f.name.replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}"] if kind is bool else [flag]
        option = typer.Option(default, *decls, help=helps.get(f.name, ""))
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option,
                                        annotation=kind | None if optional else kind))
    return params


def make_command(name: str, summary: str, common: list[inspect.Parameter], member_params: list[inspect.Parameter],
                 body: Callable[[dict[str, Any], dict[str, Any]], None]) -> Callable[..., None]:
    """A function typer can mount: its signature is `common + member_params`; `body(common, member)` runs."""
    member_names = [p.name for p in member_params]

    def command(**kwargs: Any) -> None:
        member = {k: kwargs.pop(k) for k in member_names}
        body(kwargs, member)

    params = [*common, *member_params]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = name.replace("-", "_")
    command.__doc__ = summary
    return handle_errors(command)


def summary_line(cls: type) -> str:
    """The first paragraph of the class docstring (the command's help), without the Args section."""
    doc = inspect.getdoc(cls) or ""
    first = doc.split("\n\n")[0].strip()
    if first and not first.startswith(("Args:", "Attributes:")):
        return " ".join(first.split())
    module = inspect.getmodule(cls)  # else the module's opening paragraph (one file per member)
    return " ".join(((module.__doc__ or "") if module else "").split("\n\n")[0].split())


def common_option(name: str, default: Any, flag: str, help_text: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=typer.Option(default, flag, help=help_text),
                             annotation=annotation)


JSON_PARAM = inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=JsonOption, annotation=bool)

"""Errors that the command line turns into a one-line message and an exit code.

`InputError` is bad input or bad usage (exit 2): it names the file, the record (line) and the field at
fault, so a user can fix the input without reading a traceback.
"""

from __future__ import annotations

from pathlib import Path


class SelbenchError(Exception):
    """Base class for errors selbench raises on purpose."""

    exit_code = 1


class InputError(SelbenchError):
    """Bad input or usage: reported as `error: FILE:LINE: field 'x': message`, exit code 2.

    Args:
        message: what is wrong and, where possible, what is allowed.
        path: the file at fault.
        line: 1-based line (JSONL) or record index (JSON arrays, Parquet rows).
        field: the field at fault.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.path is not None:
            where = self.path
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"record {self.line}: "
        field = f"field '{self.field}': " if self.field else ""
        return f"{where}{field}{self.message}".replace("\n", " ")


class MissingDependencyError(SelbenchError, ImportError):
    """An optional heavy dependency is missing; the message names the exact pip command."""

    exit_code = 2

    def __init__(self, package: str, extra: str | None, hint: str | None = None) -> None:
        how = hint if hint is not None else f'pip install "selbench[{extra}]"'
        super().__init__(f"{package} is not installed: {how}")

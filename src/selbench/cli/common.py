"""Shared command-line plumbing: one-line errors with exit codes, `--json` output, progress.

Contract (DESIGN.md): exit 0 on success, 2 on bad input/usage with one `error: ...` line on stderr naming
file, record and field (no traceback unless `--debug`), 1 on an internal failure; `--json` prints exactly
one JSON object on stdout as the last line.
"""

from __future__ import annotations

import errno
import functools
import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer

from selbench.errors import SelbenchError

F = TypeVar("F", bound=Callable[..., Any])

DEBUG_ENV = "SELBENCH_DEBUG"

JsonOption = typer.Option(False, "--json", help="Print one JSON object on stdout as the last line.")


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def fail(message: str, code: int = 2) -> None:
    """Print `error: message` on stderr, on one line (multi-line messages are joined), and exit with `code`."""
    one_line = " ".join(part.strip() for part in str(message).splitlines() if part.strip())
    typer.echo(f"error: {one_line}", err=True)
    raise typer.Exit(code)


def handle_errors(func: F) -> F:
    """Turn selbench's errors into one line + exit code; unexpected ones into exit 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            typer.echo("error: interrupted; finished work is kept, re-run to resume", err=True)
            raise typer.Exit(130) from None
        except SelbenchError as exc:
            if debug_enabled():
                traceback.print_exc()
            msg = exc.one_line() if hasattr(exc, "one_line") else str(exc)
            fail(msg, exc.exit_code)
        except RecursionError:
            # Python's parsers (json, yaml) recurse per nesting level: deeply nested input, not a bug of ours
            # (the readers that know the file name say so themselves).
            if debug_enabled():
                traceback.print_exc()
            fail("input nested too deeply to parse (more levels than Python's recursion limit)", 2)
        except OSError as exc:
            if debug_enabled():
                traceback.print_exc()
            if isinstance(exc, FileNotFoundError) or exc.errno in _ACCESS_ERRNOS:
                # A path the user gave (or the cache folder) that cannot be read or written: bad usage.
                fail(_os_error_line(exc), 2)
            fail(f"internal: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)", 1)
        except (KeyError, ValueError) as exc:
            # Usage-level problems raised by registries and validation (unknown names, bad values).
            if debug_enabled():
                traceback.print_exc()
            text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            fail(str(text), 2)
        except Exception as exc:  # noqa: BLE001 - the CLI boundary: report, do not crash with a traceback
            if debug_enabled():
                traceback.print_exc()
            fail(f"internal: {type(exc).__name__}: {exc} (re-run with --debug for the traceback)", 1)

    return wrapper  # type: ignore[return-value]


_ACCESS_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}


def _os_error_line(exc: OSError) -> str:
    """`PATH: reason` for an OSError, e.g. "/sys/x: cannot write there: Operation not permitted"."""
    what = {errno.EACCES: "permission denied", errno.EPERM: "cannot write there", errno.EROFS: "read-only file system"}
    reason = exc.strerror or str(exc)
    prefix = what.get(exc.errno or 0)
    text = f"{prefix}: {reason}" if prefix and prefix.lower() != reason.lower() else reason
    return f"{exc.filename}: {text}" if exc.filename else text


def check_writable(path: Path, field: str = "out") -> None:
    """Fail now (InputError, exit 2) when the output `path` (a folder or a file) cannot be created or written,
    not after the work is done.

    Probes the nearest existing folder at or above `path` by creating and removing a temporary folder in it
    (`os.access` says yes to root on a read-only mount); nothing is left behind.
    """
    import tempfile

    from selbench.errors import InputError

    probe = Path(path).expanduser().absolute()
    if probe.is_file():  # a file output written again: its folder must take the new file
        probe = probe.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"cannot be created: {probe} is a file, not a folder", path=path, field=field)
    try:
        Path(tempfile.mkdtemp(prefix=".selbench-probe-", dir=probe)).rmdir()
    except OSError as exc:
        raise InputError(f"cannot be written ({probe}: {exc.strerror or exc})", path=path, field=field) from None


def emit(result: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Print a command's result: human text on stderr-free stdout, or one JSON line last."""
    if as_json:
        # Strict JSON: NaN/Infinity (e.g. an undefined kappa) become null rather than invalid tokens.
        sys.stdout.write(json.dumps(_finite(result), sort_keys=True, default=str, allow_nan=False) + "\n")
        sys.stdout.flush()
        return
    if human is not None:
        human(result)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(show_header=False, box=None)
    for key, value in result.items():
        if isinstance(value, float):
            value = f"{value:.6g}"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value, default=str)
        table.add_row(f"[bold]{key}[/bold]", str(value))
    Console().print(table)


def _finite(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, recursively.

    >>> _finite({"a": float("nan"), "b": [1.0, float("inf")]})
    {'a': None, 'b': [1.0, None]}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def setup_logging(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose or debug_enabled() else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    # Third-party libraries are chatty at INFO; keep ours.
    for name in ("httpx", "httpx2", "httpcore", "urllib3", "filelock", "datasets", "transformers", "torch", "accelerate",
                 "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.WARNING)


def backend_options(backend: str, backend_url: str | None, served_model: str | None) -> dict[str, Any] | None:
    """`--backend-url` / `--served-model` as the generation stage's backend options (openai backend only)."""
    from selbench.errors import InputError

    if backend != "openai":
        if backend_url or served_model:
            raise InputError("--backend-url and --served-model go with --backend openai", field="backend-url")
        return None
    if not backend_url:
        raise InputError("--backend openai needs --backend-url (e.g. http://127.0.0.1:8000/v1)", field="backend-url")
    return {"base_url": backend_url, "served_model": served_model}

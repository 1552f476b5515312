"""Library chatter goes to the step's log file, not the terminal.

While a training step runs, transformers / TRL / peft / accelerate / datasets write deprecation
FutureWarnings, notes such as "Token indices sequence length is longer than ...", and their own progress
bars for loading and saving weights. `library_output_to(path)` sends all of that to a text file in the
step's folder for the duration of the step: Python warnings (through `logging.captureWarnings`) and the
libraries' loggers get a file handler instead of their stderr handlers, and their progress bars are off.
selbench's own loggers are untouched, so what selbench says (resuming, examples dropped) stays on stderr.
The hub's telemetry (a request TRL sends for every trainer it builds) is off meanwhile: a training step makes
no network call. Everything is restored on exit.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

STEP_LOGGER = "selbench.training.steps"  # the Trainer's per-step log dicts (trl_adapter.STEP_LOGGER)
LIBRARY_LOGGERS = ("transformers", "trl", "peft", "accelerate", "datasets", "huggingface_hub", "torch", "py.warnings",
                   STEP_LOGGER)


@contextlib.contextmanager
def library_output_to(path: str | Path, loggers: tuple[str, ...] = LIBRARY_LOGGERS) -> Iterator[Path]:
    """Route library warnings, library log records and library progress bars to `path` (appended)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # A run that already logs to a file (`selbench run`'s run.log) keeps getting these records too; only the
    # terminal (handlers writing to stdout / stderr) is spared them.
    kept = [h for h in logging.getLogger().handlers if not _writes_to_terminal(h)]
    saved = {}
    for name in loggers:
        logger = logging.getLogger(name)
        saved[name] = (logger.handlers[:], logger.propagate, logger.level)
        logger.handlers = [handler, *kept]
        logger.propagate = False
        if name == STEP_LOGGER:  # INFO records, whatever the root's level
            logger.setLevel(logging.INFO)
    bars = _progress_bars_off()
    telemetry = _hub_telemetry_off()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # each distinct warning once per location, as Python shows them
            logging.captureWarnings(True)
            try:
                yield path
            finally:
                logging.captureWarnings(False)
    finally:
        bars()
        telemetry()
        for name, (handlers, propagate, level) in saved.items():
            logger = logging.getLogger(name)
            logger.handlers = handlers
            logger.propagate = propagate
            logger.setLevel(level)
        handler.close()


def _writes_to_terminal(handler: logging.Handler) -> bool:
    import sys

    stream = getattr(handler, "stream", None)
    # The process's own stdout / stderr, not whatever sys.stderr is now: `selbench run` redirects that to its
    # run.log, whose handler must keep the records.
    if stream is not None and stream in (sys.__stderr__, sys.__stdout__):
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _hub_telemetry_off() -> Callable[[], None]:
    """Switch off huggingface_hub's telemetry (TRL sends a HEAD request per trainer) for the step; returns the
    function that restores the setting. The hub's `HF_HUB_DISABLE_TELEMETRY` is read once at import, so the
    constant itself is set."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - a dependency of transformers
        return lambda: None
    before = constants.HF_HUB_DISABLE_TELEMETRY
    constants.HF_HUB_DISABLE_TELEMETRY = True

    def undo() -> None:
        constants.HF_HUB_DISABLE_TELEMETRY = before

    return undo


def _progress_bars_off() -> Callable[[], None]:
    """Turn off the progress bars of transformers, datasets and the hub; returns the function that restores them."""
    restore = []
    try:
        from transformers.utils import logging as hf_logging

        if hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()
            restore.append(hf_logging.enable_progress_bar)
    except ImportError:  # pragma: no cover - transformers is a training dependency
        pass
    try:
        import datasets

        if datasets.is_progress_bar_enabled():
            datasets.disable_progress_bars()
            restore.append(datasets.enable_progress_bars)
    except (ImportError, AttributeError):  # pragma: no cover
        pass
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )

        if not are_progress_bars_disabled():
            disable_progress_bars()
            restore.append(enable_progress_bars)
    except ImportError:  # pragma: no cover
        pass

    def undo() -> None:
        for fn in restore:
            fn()

    return undo

"""One progress display for a run: cells and steps, with an ETA from the dry-run estimate.

The estimate is calibrated as the run goes: once some steps have been computed, the time left is the estimate
of what is left times (measured / estimated) seconds of what was computed. Cached steps cost nothing and are
left out of the calibration.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

from selbench.runner.estimate import Estimate
from selbench.runner.executors import Outcome
from selbench.runner.plan import Cell, Node, Plan


def format_seconds(seconds: float) -> str:
    """Seconds for people.

    >>> format_seconds(42), format_seconds(3725), format_seconds(2 * 86400 + 7200)
    ('42s', '1h 02m', '2d 2h')
    """
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m {seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h {seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d {seconds % 86400 // 3600:.0f}h"


class RunProgress:
    """Rich progress bars (cells, steps) on `terminal`; a no-op when disabled (not a terminal)."""

    def __init__(self, plan: Plan, terminal: TextIO, enabled: bool = True) -> None:
        self.plan = plan
        self.enabled = enabled
        self.terminal = terminal
        self.estimate: Estimate | None = None
        self.left: dict[str, float] = {}
        self.measured = self.estimated = 0.0
        self.running: dict[str, float] = {}
        self._progress: Any = None

    def start(self, estimate: Estimate) -> None:
        self.estimate = estimate
        self.left = dict(estimate.seconds)
        if not self.enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = Console(file=self.terminal)
        self._progress = Progress(TextColumn("[bold]{task.description:<6}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[note]}"), console=console,
                                  transient=False)
        self._cells = self._progress.add_task("cells", total=len(self.plan.cells), note=self._eta())
        self._steps = self._progress.add_task("steps", total=len(self.plan.nodes), note="")
        self._progress.start()

    def _eta(self) -> str:
        if self.estimate is None:
            return ""
        factor = min(10.0, max(0.1, self.measured / self.estimated)) if self.estimated > 0 else 1.0
        return f"ETA ~{format_seconds(sum(self.left.values()) * factor)} (estimate)"

    def step_started(self, node: Node) -> None:
        self.running[node.id] = time.perf_counter()
        if self._progress is not None:
            self._progress.update(self._steps, note=node.step.describe())

    def step_done(self, outcome: Outcome) -> None:
        began = self.running.pop(outcome.node, None)
        est = self.left.pop(outcome.node, 0.0)
        if outcome.ok and not outcome.cached and began is not None and est > 0:
            self.measured += time.perf_counter() - began
            self.estimated += est
        if self._progress is not None:
            self._progress.advance(self._steps)
            self._progress.update(self._cells, note=self._eta())

    def cell_done(self, cell: Cell, ok: bool, outcomes: dict[str, Outcome]) -> None:
        if self._progress is None:
            return
        self._progress.advance(self._cells)
        if not ok:
            first = next((outcomes[n] for n in cell.nodes if n in outcomes and not outcomes[n].ok), None)
            error = first.error if first is not None else "failed"
            self._progress.console.print(f"[red]cell {cell.id} failed[/red]: {error}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

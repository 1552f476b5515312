"""One progress display for a run: cells and steps, with an ETA from the dry-run estimate.

The estimate is calibrated as the run goes, per kind of step (prepare, score, train, eval...): the estimate of
what is left of a kind times (measured + prior) / (estimated + prior) seconds of that kind computed so far, the
prior (`PRIOR_SECONDS` at ratio 1) keeping a few quick steps from swinging the rest: a run whose data steps
take 5 s where 30 were estimated must not promise its training in a tenth of the estimate. Steps that ran side
by side are counted once: the sum is divided by how many steps the run has been computing at a time
(measured step seconds / elapsed seconds). Cached steps cost nothing and are left out of the calibration.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Mapping
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


PRIOR_SECONDS = 120.0  # estimated seconds' worth of belief in the estimate, per kind of step


def eta_seconds(left: Mapping[str, float], measured: Mapping[str, float], estimated: Mapping[str, float],
                parallel: float = 1.0) -> float:
    """Seconds left: each kind's estimate left, calibrated by that kind's measured / estimated seconds so far
    (shrunk toward 1 by `PRIOR_SECONDS`), divided by the steps run at a time.

    >>> eta_seconds({"train": 600.0}, {"prepare": 5.0}, {"prepare": 60.0})  # quick data steps: training unchanged
    600.0
    >>> eta_seconds({"train": 600.0}, {"train": 360.0}, {"train": 120.0})  # training took 3x its estimate
    1200.0
    >>> eta_seconds({"train": 600.0, "eval": 100.0}, {"train": 360.0}, {"train": 120.0}, parallel=2.0)
    650.0
    """
    total = 0.0
    for kind, seconds in left.items():
        factor = (measured.get(kind, 0.0) + PRIOR_SECONDS) / (estimated.get(kind, 0.0) + PRIOR_SECONDS)
        total += seconds * min(10.0, max(0.1, factor))
    return total / max(1.0, parallel)


class RunProgress:
    """Rich progress bars (cells, steps) on `terminal`; a no-op when disabled (not a terminal)."""

    def __init__(self, plan: Plan, terminal: TextIO, enabled: bool = True) -> None:
        self.plan = plan
        self.enabled = enabled
        self.terminal = terminal
        self.estimate: Estimate | None = None
        self.left: dict[str, float] = {}
        self.measured: dict[str, float] = defaultdict(float)
        self.estimated: dict[str, float] = defaultdict(float)
        self.running: dict[str, float] = {}
        self.step_seconds = 0.0  # measured seconds of every finished step, side by side counted twice
        self.began = time.perf_counter()
        self._progress: Any = None

    def start(self, estimate: Estimate) -> None:
        self.estimate = estimate
        self.left = dict(estimate.seconds)
        self.began = time.perf_counter()
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
        left: dict[str, float] = defaultdict(float)
        for node_id, seconds in self.left.items():
            left[self._kind(node_id)] += seconds
        elapsed = time.perf_counter() - self.began
        parallel = self.step_seconds / elapsed if elapsed > 0 else 1.0
        return f"ETA ~{format_seconds(eta_seconds(left, self.measured, self.estimated, parallel))} (estimate)"

    def _kind(self, node_id: str) -> str:
        node = self.plan.nodes.get(node_id)
        if node is None:
            return "other"
        return f"{node.kind}:{node.benchmark}" if node.benchmark else node.kind

    def step_started(self, node: Node) -> None:
        self.running[node.id] = time.perf_counter()
        if self._progress is not None:
            self._progress.update(self._steps, note=node.step.describe())

    def step_done(self, outcome: Outcome) -> None:
        began = self.running.pop(outcome.node, None)
        est = self.left.pop(outcome.node, 0.0)
        if outcome.ok and not outcome.cached and began is not None:
            took = time.perf_counter() - began
            self.step_seconds += took
            if est > 0:
                kind = self._kind(outcome.node)
                self.measured[kind] += took
                self.estimated[kind] += est
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

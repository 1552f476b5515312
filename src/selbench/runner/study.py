"""`selbench run GRID.yaml`: plan a study, say what is left and what it will cost, run it, keep the results.

    report = run_study("configs/demo.yaml")                 # local executor, resumable
    dry = dry_run("configs/paper.yaml"); dry.summary()     # computes nothing

The run folder (DESIGN.md "The study") gets `grid.yaml` (the grid as resolved), `plan.json` (every step with
its key), `run.log` (library warnings, training logs, per-step errors), `data/`, `selections/`, `models/`
(links into the step store), `results.parquet` and `items.parquet` (rewritten as cells finish). Killing the
run at any moment and running it again redoes no finished step: every step is a store step, and the run only
ever re-visits them.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selbench.runner.estimate import Estimate, estimate
from selbench.runner.executors import Outcome, make_executor
from selbench.runner.grid import Grid, grid_yaml, load_grid, unregistered_strategies
from selbench.runner.plan import NodeStatus, Plan, build_plan, node_status, plan_json
from selbench.runner.results import ResultsTables
from selbench.store import StepStore, write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

LOG_FILE = "run.log"


@dataclass
class DryRun:
    """What a run would do: the plan, what is cached, and the estimate for the rest."""

    grid: Grid
    plan: Plan
    status: dict[str, NodeStatus]
    estimate: Estimate
    unregistered: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """DESIGN's `--dry-run --json` keys (`cells`, `steps`, `cached`, `to_run`, `est_seconds`, `est_cost_usd`)
        plus the steps per kind, the throughputs used and the strategies not registered here."""
        cached = sum(s.cached for s in self.status.values())
        kinds: dict[str, dict[str, int]] = {}
        for node in self.plan.nodes.values():
            entry = kinds.setdefault(node.kind, {"steps": 0, "cached": 0})
            entry["steps"] += 1
            entry["cached"] += int(self.status[node.id].cached)
        tp = self.estimate.throughputs
        return {"cells": len(self.plan.cells), "steps": len(self.plan.nodes), "cached": cached,
                "to_run": len(self.plan.nodes) - cached, "est_seconds": round(self.estimate.total_seconds, 1),
                "est_cost_usd": round(self.estimate.total_usd, 4), "by_kind": kinds,
                "cells_cached": sum(all(self.status[n].cached for n in self.plan.cell_nodes(c)) for c in self.plan.cells),
                "throughputs": {"device": tp.device, "train_tokens_per_s": round(tp.train_tokens_per_s, 2),
                                "generate_tokens_per_s": round(tp.generate_tokens_per_s, 2), "sources": tp.sources},
                "unregistered_strategies": self.unregistered, "run_dir": str(self.plan.run_dir)}


def _prepare(grid_path: str | Path, out: str | Path | None, allow_unregistered: bool) -> tuple[Grid, Plan]:
    grid = load_grid(grid_path, allow_unregistered=allow_unregistered)
    return grid, build_plan(grid, out)


def dry_run(grid_path: str | Path, *, out: str | Path | None = None, store: StepStore | None = None,
            device: str | None = None) -> DryRun:
    """Plan the grid and estimate what is left; runs no step, loads no model, writes nothing.

    `device` ("cpu", "cuda") estimates for that kind of machine instead of this one (its cost records in the
    store, else the documented defaults of `selbench.runner.estimate`).

    Strategies the registry does not know are planned (and listed) instead of refused, so a study's plan can be
    read before every strategy is installed; `run_study` refuses them.
    """
    grid, plan = _prepare(grid_path, out, allow_unregistered=True)
    store = store or StepStore()
    status = node_status(plan, store)
    unregistered = unregistered_strategies(grid)
    return DryRun(grid, plan, status, estimate(plan, status, store, unregistered, device), unregistered)


@dataclass
class RunReport:
    """How a run ended (`summary()` is `selbench run --json`)."""

    plan: Plan
    outcomes: dict[str, Outcome]
    seconds: float
    results: Path | None
    items: Path | None
    log_file: Path

    def cell_state(self) -> dict[str, str]:
        """cell id -> "failed", "cached" (every step it needs was cached) or "done"."""
        states = {}
        for cell in self.plan.cells:
            needed = self.plan.cell_nodes(cell)
            outcomes = [self.outcomes.get(n) for n in needed]
            if any(o is None or not o.ok for o in outcomes):
                states[cell.id] = "failed"
            elif all(o.cached for o in outcomes):
                states[cell.id] = "cached"
            else:
                states[cell.id] = "done"
        return states

    def failures(self) -> list[dict[str, str]]:
        """The first failing step of each failed node chain, with its error (upstream failures left out)."""
        return [{"step": o.node, "error": o.error or ""} for o in self.outcomes.values()
                if not o.ok and not (o.error or "").startswith("upstream failed")]

    def summary(self) -> dict[str, Any]:
        """`cells`, `done` (finished, computed now or cached), `cached` (finished without computing anything),
        `failed`, `cost_usd` (the study's cost: every step's cost record once, cached or not, priced with the
        grid's price sheet) and `spent_usd` (what this invocation computed), plus step counts, failures and the
        tables' paths."""
        from selbench.cost.tables import price_usd
        from selbench.runner.estimate import price_sheet

        states = self.cell_state()
        ok = [o for o in self.outcomes.values() if o.ok and o.result is not None]
        prices = price_sheet(self.plan.grid.prices) if self.plan.grid.prices is not None else None
        usd = {o.node: price_usd(o.result.cost, prices) if o.result.cost else 0.0 for o in ok}
        return {"cells": len(self.plan.cells), "done": sum(s != "failed" for s in states.values()),
                "cached": sum(s == "cached" for s in states.values()),
                "failed": sum(s == "failed" for s in states.values()),
                "cost_usd": round(sum(usd.values()), 6),
                "spent_usd": round(sum(usd[o.node] for o in ok if not o.cached), 6),
                "steps": len(self.plan.nodes), "steps_cached": sum(o.cached for o in ok),
                "steps_run": sum(not o.cached for o in ok),
                "steps_failed": sum(not o.ok for o in self.outcomes.values()), "failures": self.failures(),
                "results": str(self.results) if self.results else None,
                "items": str(self.items) if self.items else None, "run_dir": str(self.plan.run_dir),
                "log": str(self.log_file), "seconds": round(self.seconds, 1)}


@contextlib.contextmanager
def run_logging(log_file: Path, verbose: bool = False) -> Iterator[None]:
    """Send logging, warnings and anything printed (Trainer log dicts, progress bars) to the run's log file;
    the terminal keeps only the progress display, which is given the real stderr before this starts."""
    import warnings

    log_file.parent.mkdir(parents=True, exist_ok=True)
    stream = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - closed below
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    root = logging.getLogger()
    quieted = [(h, h.level) for h in root.handlers if isinstance(h, logging.StreamHandler)
               and getattr(h, "stream", None) in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)]
    for h, _ in quieted:
        h.setLevel(logging.CRITICAL + 1)
    old_level = root.level
    root.setLevel(min(old_level or logging.INFO, handler.level))
    root.addHandler(handler)
    logging.captureWarnings(True)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            warnings.simplefilter("default")
            yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(old_level)
        for h, level in quieted:
            h.setLevel(level)
        stream.close()


def run_study(grid_path: str | Path, *, executor: str | None = None, address: str | None = None,
              out: str | Path | None = None, store: StepStore | None = None, progress: bool | None = None,
              workers: int | None = None, verbose: bool = False) -> RunReport:
    """Run every step of the grid that is not cached; failing cells are reported and the others go on.

    Args:
        grid_path: the grid YAML.
        executor: `local` or `ray` (default: the grid's `executor.kind`).
        address: a Ray cluster (default: the grid's `executor.address`; None starts a local Ray).
        out: the run folder (default: the grid's `out`).
        store: the step store (default: `$SELBENCH_CACHE`).
        progress: show the progress display (default: when stderr is a terminal).
        workers: most steps at once (local) / CPUs of a local Ray.
        verbose: debug lines in the log file.
    """
    from selbench.runner.progress import RunProgress

    started = time.perf_counter()
    grid, plan = _prepare(grid_path, out, allow_unregistered=False)
    store = store or StepStore()
    run_dir = plan.run_dir
    log_file = run_dir / LOG_FILE
    kind = executor or grid.executor.kind
    address = address if address is not None else (grid.executor.address if kind == grid.executor.kind else None)
    # Bad options fail before anything is written.
    runner = make_executor(kind, address=address, max_retries=grid.executor.max_retries,
                           workers=workers or grid.executor.workers, log_file=str(log_file),
                           shard_tasks=grid.executor.shard_tasks)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "grid.yaml", grid_yaml(grid))
    terminal = sys.stderr
    display = RunProgress(plan, terminal, enabled=terminal.isatty() if progress is None else progress)
    tables = ResultsTables(plan)
    outcomes: dict[str, Outcome] = {}
    with run_logging(log_file, verbose):
        log.info("run %s: %d cells, %d steps, executor %s", run_dir, len(plan.cells), len(plan.nodes), kind)
        status = node_status(plan, store)
        write_json_atomic(run_dir / "plan.json", plan_json(plan, status))
        display.start(estimate(plan, status, store))
        pending_cells = {c.id: set(c.nodes) for c in plan.cells}
        base_left = set(plan.base_evals.values())
        written: list[Path] = []

        def on_done(outcome: Outcome) -> None:
            outcomes[outcome.node] = outcome
            display.step_done(outcome)
            if not outcome.ok and not (outcome.error or "").startswith("upstream failed"):
                log.error("step %s failed: %s", outcome.node, outcome.error)
            changed = False
            for cell in plan.cells:
                left = pending_cells.get(cell.id)
                if left is None or outcome.node not in left:
                    continue
                left.discard(outcome.node)
                if not left:
                    del pending_cells[cell.id]
                    train = outcomes.get(cell.train)
                    ok = all(outcomes[n].ok for n in cell.nodes)
                    if train is not None and train.ok:
                        tables.add_cell(cell, outcomes)
                        changed = True
                    display.cell_done(cell, ok, outcomes)
            if outcome.node in base_left:
                base_left.discard(outcome.node)
                if not base_left:
                    tables.add_base(outcomes)
                    changed = True
            if changed:
                written[:] = list(tables.write())

        try:
            runner.execute(plan, store, on_start=display.step_started, on_done=on_done)
        finally:
            display.stop()
        final = {node_id: NodeStatus(o.result.key if o.result else status[node_id].key, o.ok and o.cached)
                 for node_id, o in outcomes.items()}
        write_json_atomic(run_dir / "plan.json", plan_json(plan, {**status, **final}))
        if not written:
            written[:] = list(tables.write())
    return RunReport(plan, outcomes, time.perf_counter() - started, written[0], written[1], log_file)

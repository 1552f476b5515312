"""Executors: run a plan's steps in dependency order, locally or on Ray; steps compute, executors schedule.

Both executors walk the same DAG: a node starts once every node it reads from has finished; a node whose input
failed is not started and fails with "upstream failed", while every other branch goes on. Each node runs its
step through the step store, so a finished step is never recomputed (a re-run visits every node, and a
cached node returns at once).

* `LocalExecutor`: a small thread pool within this machine's CPUs, GPUs and memory. A step asking for a GPU on
  a machine without one holds all the CPUs instead, so model steps run one at a time on a CPU box while light
  steps (selection) run beside each other. With two or more GPUs, model steps run in their own process with
  `CUDA_VISIBLE_DEVICES` set to the GPUs they hold (killed with the run: PR_SET_PDEATHSIG).
* `RayExecutor` (`selbench.runner.ray_executor`): each node a Ray task with its resource request and retries;
  long sharded steps (scoring, generation, LLMBar) spread over several tasks. Workers write through the same
  store, on a filesystem every worker sees.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from selbench.errors import InputError
from selbench.runner.plan import Node, Plan
from selbench.store import StepResult, StepStore

if TYPE_CHECKING:
    from selbench.runner.ray_executor import RayExecutor

log = logging.getLogger(__name__)

ENV_PREFIXES = ("SELBENCH_", "HF_", "TRANSFORMERS_", "OPENAI_", "TOKENIZERS_", "OMP_", "PYTHONPATH")


@dataclass
class Outcome:
    """How one node ended.

    Args:
        node: node id.
        ok: finished (computed or cached).
        cached: found in the store, nothing computed.
        result: the step's stored result (folder, meta) when ok.
        error: one line when not ok.
        seconds: wall time of this call.
        attempts: runs tried.
        shard_tasks: tasks its shards were spread over (Ray executor; 0: it ran as one task).
    """

    node: str
    ok: bool
    cached: bool = False
    result: StepResult | None = None
    error: str | None = None
    seconds: float = 0.0
    attempts: int = 1
    shard_tasks: int = 0


Callback = Callable[[Any], None]


def forwarded_env() -> dict[str, str]:
    """The environment a worker needs to find the same store, models and keys."""
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}


@contextmanager
def _worker(env: dict[str, str] | None, log_file: str | None) -> Iterator[None]:
    """A task's environment (the driver's `forwarded_env`) and the run's log file (info lines and up, as the
    driver writes them), for the task's duration."""
    if env:
        os.environ.update(env)
    handler = None
    root = logging.getLogger()
    old_level = root.level
    if log_file:
        handler = logging.FileHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.setLevel(logging.INFO)
        root.addHandler(handler)
        root.setLevel(min(old_level or logging.INFO, logging.INFO))
    try:
        yield
    finally:
        if handler is not None:
            root.removeHandler(handler)
            root.setLevel(old_level)
            handler.close()


def run_node(step: Any, store_root: str, env: dict[str, str] | None = None, log_file: str | None = None,
             node_id: str = "") -> Outcome:
    """Run one step in this process (the body of every executor's task); bad input is an Outcome, not a raise."""
    with _worker(env, log_file):
        started = time.perf_counter()
        try:
            result = step.run(StepStore(store_root))
            return Outcome(node_id, True, bool(result.cached), result, seconds=time.perf_counter() - started)
        except InputError as exc:
            log.error("%s: %s", node_id, exc.one_line())
            return Outcome(node_id, False, error=exc.one_line(), seconds=time.perf_counter() - started)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:500]


class _Walker:
    """The DAG walk shared by the executors: which nodes may start, which are blocked by a failure."""

    def __init__(self, plan: Plan, on_start: Callback | None, on_done: Callback | None) -> None:
        self.plan = plan
        self.pending = dict(plan.nodes)
        self.outcomes: dict[str, Outcome] = {}
        self.on_start = on_start or (lambda node: None)
        self.on_done = on_done or (lambda outcome: None)

    def finish(self, outcome: Outcome) -> None:
        self.outcomes[outcome.node] = outcome
        self.on_done(outcome)

    def ready(self) -> list[Node]:
        """Nodes whose inputs are all finished; nodes with a failed input fail here (and so on, downstream)."""
        changed = True
        while changed:
            changed = False
            for node_id, node in list(self.pending.items()):
                failed = [d for d in node.deps if d in self.outcomes and not self.outcomes[d].ok]
                if failed:
                    del self.pending[node_id]
                    self.finish(Outcome(node_id, False, error=f"upstream failed: {failed[0]}", attempts=0))
                    changed = True
        return [n for n in self.pending.values() if all(d in self.outcomes for d in n.deps)]

    def start(self, node: Node) -> None:
        del self.pending[node.id]
        self.on_start(node)


def _capacity() -> dict[str, float]:
    from selbench.cost.meter import detect_device

    kind, count = detect_device()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": float(os.cpu_count() or 1), "gpus": float(count if kind == "cuda" else 0), "memory_gb": memory}


def fit_request(resources: dict[str, float], capacity: dict[str, float]) -> dict[str, float]:
    """A node's request made to fit the machine: without GPUs a GPU step holds every CPU instead; nothing asks
    for more than there is (a request that can never be met would stall the run).

    >>> fit_request({"cpus": 2, "gpus": 1, "memory_gb": 16}, {"cpus": 2, "gpus": 0, "memory_gb": 8})
    {'cpus': 2.0, 'gpus': 0.0, 'memory_gb': 8.0}
    """
    cpus = float(resources.get("cpus", 1))
    gpus = float(resources.get("gpus", 0))
    if gpus > 0 and capacity["gpus"] <= 0:
        cpus, gpus = capacity["cpus"], 0.0
    return {"cpus": float(min(cpus, capacity["cpus"])), "gpus": float(min(gpus, capacity["gpus"])),
            "memory_gb": float(min(float(resources.get("memory_gb", 0)), capacity["memory_gb"]))}


class LocalExecutor:
    """Independent steps at once within this machine's CPUs, GPUs and memory.

    Args:
        workers: most steps at once (default: the CPU count).
        max_retries: re-runs of a step that raised (bad input is never retried).
        isolate: run GPU steps in their own process pinned to their GPUs (default: when there are >= 2 GPUs).
        log_file: the run's log file (worker processes append to it).
        capacity: `cpus`, `gpus`, `memory_gb` to schedule within (default: this machine's).
    """

    kind = "local"

    def __init__(self, workers: int | None = None, max_retries: int = 1, isolate: bool | None = None,
                 log_file: str | None = None, capacity: dict[str, float] | None = None) -> None:
        self.capacity = dict(capacity) if capacity is not None else _capacity()
        self.workers = workers or int(self.capacity["cpus"])
        self.max_retries = max_retries
        self.isolate = self.capacity["gpus"] >= 2 if isolate is None else isolate
        self.log_file = log_file

    def execute(self, plan: Plan, store: StepStore, on_start: Callback | None = None,
                on_done: Callback | None = None) -> dict[str, Outcome]:
        walker = _Walker(plan, on_start, on_done)
        free = dict(self.capacity)
        free_gpus = list(range(int(self.capacity["gpus"])))
        running: dict[Future, tuple[Node, dict[str, float], list[int]]] = {}
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="selbench-step") as pool:
            while walker.pending or running:
                for node in walker.ready():
                    need = fit_request(node.resources, self.capacity)
                    fits = all(need[k] <= free[k] + 1e-9 for k in need) and len(running) < self.workers
                    if not fits and running:
                        continue  # wait for room; with nothing running, it runs alone
                    gpus = [free_gpus.pop(0) for _ in range(int(need["gpus"]))]
                    for k in need:
                        free[k] -= need[k]
                    walker.start(node)
                    running[pool.submit(self._attempts, node, store, gpus)] = (node, need, gpus)
                if not running:
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in finished:
                    node, need, gpus = running.pop(future)
                    for k in need:
                        free[k] += need[k]
                    free_gpus.extend(gpus)
                    walker.finish(future.result())
        return walker.outcomes

    def _attempts(self, node: Node, store: StepStore, gpus: list[int]) -> Outcome:
        started = time.perf_counter()
        error = ""
        for attempt in range(1, self.max_retries + 2):
            try:
                if self.isolate and gpus:
                    outcome = _in_process(node, store, gpus, self.log_file)
                else:
                    outcome = run_node(node.step, str(store.root), node_id=node.id)
                outcome.attempts = attempt
                return outcome
            except Exception as exc:  # noqa: BLE001 - a failing step fails its cell, not the run
                error = _one_line(exc)
                log.error("%s failed (attempt %d of %d): %s\n%s", node.id, attempt, self.max_retries + 1, error,
                          traceback.format_exc())
        return Outcome(node.id, False, error=error, seconds=time.perf_counter() - started,
                       attempts=self.max_retries + 1)


def _child(step: Any, store_root: str, env: dict[str, str], log_file: str | None, node_id: str, conn: Any) -> None:
    """Body of an isolated step's process: dies with its parent, returns the Outcome (or the error) on `conn`."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    try:
        conn.send(("ok", run_node(step, store_root, env, log_file, node_id)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which decides about retries
        conn.send(("error", f"{_one_line(exc)}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def _in_process(node: Node, store: StepStore, gpus: list[int], log_file: str | None) -> Outcome:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    env = {**forwarded_env(), "CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in gpus)}
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(node.step, str(store.root), env, log_file, node.id, child),
                          name=f"selbench-{node.kind}")
    process.start()
    child.close()
    try:
        kind, payload = parent.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"step process exited with code {process.exitcode} before reporting") from None
    process.join()
    if kind == "error":
        raise RuntimeError(payload)
    return payload


def make_executor(kind: str, *, address: str | None = None, max_retries: int = 1, workers: int | None = None,
                  log_file: str | None = None, shard_tasks: int | None = None) -> LocalExecutor | RayExecutor:
    """The executor a grid or the command line names (`shard_tasks` is the Ray executor's)."""
    if kind == "local":
        if address is not None:
            raise InputError("--address goes with --executor ray", field="address")
        return LocalExecutor(workers=workers, max_retries=max_retries, log_file=log_file)
    if kind == "ray":
        from selbench.runner.ray_executor import RayExecutor, check_ray_address

        if address is not None:
            check_ray_address(address)
        return RayExecutor(address=address, max_retries=max_retries, num_cpus=workers, log_file=log_file,
                           shard_tasks=shard_tasks)
    raise InputError(f"{kind!r} is not one of local, ray", field="executor")


def __getattr__(name: str) -> Any:
    """`RayExecutor` and `check_ray_address` live in `selbench.runner.ray_executor` (imported on first use:
    this module must not need Ray); older imports from here still work."""
    if name in ("RayExecutor", "check_ray_address"):
        from selbench.runner import ray_executor

        return getattr(ray_executor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

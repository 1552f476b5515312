"""The Ray executor: each plan node a Ray task with its resource request and retries; long sharded steps as
several tasks.

Each node is a Ray task with its resource request (`num_cpus`, `num_gpus`, `memory`, capped at what the
largest node has) and `max_retries`; bad input (`InputError`) is not retried. Workers write through the same
store: the store root and the run folder must be a filesystem every worker sees (NFS, Lustre, a mounted
bucket), passed to each task with the `SELBENCH_*` environment (pattern: datatrove's `executor/ray.py`).

A step that follows the sharding protocol (`selbench.step.ShardedStep`: scoring, generation, LLMBar judging),
is not cached and has more than one shard left is fanned out: the driver asks it for its shard plan (no
model is loaded), cuts the remaining shards into contiguous groups, one per Ray task (at most `shard_tasks`;
default: as many as the cluster holds at once with the step's request), each task computing and saving its
group into the step's partial folder with the step's request; when they all succeed, the step's ordinary run
(one more task, same request, so its cost record names the same device) finds every shard saved and only
assembles the output. A shard task that still fails after its retries fails the node with its one-line
error, once the node's other shard tasks have ended (their shards stay saved for the next run); the rest of
the plan goes on.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selbench.errors import InputError
from selbench.runner.executors import (
    Callback,
    Outcome,
    _one_line,
    _Walker,
    _worker,
    fit_request,
    forwarded_env,
    run_node,
)
from selbench.runner.plan import Node, Plan
from selbench.step import is_sharded
from selbench.store import StepStore

log = logging.getLogger(__name__)


def run_shard_group(step: Any, store_root: str, numbers: list[int], env: dict[str, str] | None = None,
                    log_file: str | None = None, node_id: str = "") -> tuple[int, str | None]:
    """Compute and save shards `numbers` of a sharded step (the body of a Ray shard task).

    Returns (shards computed, None), or (0, the one-line error) for bad input, which is not retried.
    """
    with _worker(env, log_file):
        try:
            counts = step.run_shards(StepStore(store_root), numbers)
        except InputError as exc:
            log.error("%s: %s", node_id, exc.one_line())
            return 0, exc.one_line()
        log.info("%s: shards %d-%d: %d computed, %d found done", node_id, numbers[0], numbers[-1],
                 counts["computed"], counts["resumed"])
        return int(counts["computed"]), None


def worker_slots(need: dict[str, float], nodes: list[dict[str, float]]) -> int:
    """How many tasks asking for `need` (`cpus`, `gpus`, `memory_gb`) the cluster's nodes (Ray's resource
    totals: `CPU`, `GPU`, `memory` in bytes) hold at once; at least 1.

    >>> worker_slots({"cpus": 1, "gpus": 1, "memory_gb": 8}, [{"CPU": 16, "GPU": 2, "memory": 64 * 2**30}] * 2)
    4
    >>> worker_slots({"cpus": 2, "gpus": 0, "memory_gb": 0}, [{"CPU": 3}])
    1
    """
    total = 0
    for res in nodes:
        fits = [res.get("CPU", 0.0) / need["cpus"]] if need.get("cpus", 0) > 0 else []
        if need.get("gpus", 0) > 0:
            fits.append(res.get("GPU", 0.0) / need["gpus"])
        if need.get("memory_gb", 0) > 0:
            fits.append(res.get("memory", 0.0) / 2**30 / need["memory_gb"])
        total += int(min(fits) + 1e-9) if fits else 1
    return max(1, total)


def split_groups(numbers: list[int], parts: int) -> list[list[int]]:
    """`numbers` cut into `parts` contiguous groups of nearly equal size (the first ones one longer).

    >>> split_groups([0, 1, 2, 3, 4, 5, 6], 3)
    [[0, 1, 2], [3, 4], [5, 6]]
    """
    parts = max(1, min(parts, len(numbers)))
    size, extra = divmod(len(numbers), parts)
    groups, start = [], 0
    for i in range(parts):
        stop = start + size + (i < extra)
        groups.append(numbers[start:stop])
        start = stop
    return groups


@dataclass
class _FanOut:
    """A node whose shards are out as several Ray tasks."""

    need: dict[str, float]
    tasks: int
    left: int
    started: float = field(default_factory=time.perf_counter)
    error: str | None = None
    attempts: int = 1


class RayExecutor:
    """Each node a Ray task with its resource request and retries; long sharded steps as several tasks.

    Args:
        address: a running cluster (`auto`, `HOST:PORT`, `ray://...`); None starts a local Ray on this machine.
        max_retries: Ray task retries on failure (bad input is not retried).
        num_cpus: CPUs of a local Ray (default: this machine's).
        log_file: the run's log file (on the shared filesystem, workers append to it).
        shard_tasks: most tasks one sharded step (scoring, generation, LLMBar) is spread over; None: as many
            as the cluster holds at once with the step's request (`worker_slots`); 1: never spread.
    """

    kind = "ray"

    def __init__(self, address: str | None = None, max_retries: int = 1, num_cpus: int | None = None,
                 log_file: str | None = None, shard_tasks: int | None = None) -> None:
        if shard_tasks is not None and shard_tasks < 1:
            raise InputError(f"shard_tasks {shard_tasks!r} must be >= 1", field="shard_tasks")
        self.address = address
        self.max_retries = max_retries
        self.num_cpus = num_cpus
        self.log_file = log_file
        self.shard_tasks = shard_tasks
        self._started = False

    def _init(self) -> Any:
        import ray

        if ray.is_initialized():
            return ray
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
                                   "configure_logging": False}
        if self.address is None:
            import tempfile

            # Ray's socket paths must stay under 107 bytes: a short temp folder, not pytest's deep one.
            tmp = Path(tempfile.gettempdir() if len(tempfile.gettempdir()) < 20 else "/tmp") / f"sbray{os.getpid()}"
            options.update(num_cpus=self.num_cpus or os.cpu_count() or 1, _temp_dir=str(tmp))
        else:
            options["address"] = self.address
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            if self.address is None:
                raise
            raise InputError(f"cannot connect to the Ray cluster at {self.address!r}: {exc}", field="address") from None
        self._started = True
        self._temp_dir = options.get("_temp_dir")
        return ray

    def shutdown(self) -> None:
        if self._started:
            import shutil

            import ray

            ray.shutdown()
            self._started = False
            if getattr(self, "_temp_dir", None):  # the local Ray's sessions; the run's log keeps what matters
                shutil.rmtree(self._temp_dir, ignore_errors=True)

    @staticmethod
    def _node_capacity(nodes: list[dict[str, float]]) -> dict[str, float]:
        """The largest node's CPUs, GPUs and memory (GB), from Ray's resource totals of the live nodes."""
        best = {"cpus": 1.0, "gpus": 0.0, "memory_gb": 1.0}
        for res in nodes:
            best = {"cpus": max(best["cpus"], res.get("CPU", 0.0)), "gpus": max(best["gpus"], res.get("GPU", 0.0)),
                    "memory_gb": max(best["memory_gb"], res.get("memory", 0.0) / 2**30)}
        return best

    def execute(self, plan: Plan, store: StepStore, on_start: Callback | None = None,
                on_done: Callback | None = None) -> dict[str, Outcome]:
        ray = self._init()
        try:
            return self._execute(ray, plan, store, on_start, on_done)
        finally:
            self.shutdown()

    def _shard_groups(self, node: Node, store: StepStore, need: dict[str, float],
                      nodes: list[dict[str, float]]) -> list[list[int]]:
        """The shard groups to spread `node` over, or [] to run it as one task (not sharded, cached, one
        shard left, one slot, or no plan: then the node's own task meets and reports the problem)."""
        if not is_sharded(node.step) or self.shard_tasks == 1:
            return []
        try:
            todo = list(node.step.shard_plan(store))
        except Exception as exc:  # noqa: BLE001 - the node's own task reports it, with retries
            log.warning("%s: no shard plan (%s); running it as one task", node.id, _one_line(exc))
            return []
        tasks = min(len(todo), self.shard_tasks or worker_slots(need, nodes))
        return split_groups(todo, tasks) if tasks > 1 else []

    def _execute(self, ray: Any, plan: Plan, store: StepStore, on_start: Callback | None,
                 on_done: Callback | None) -> dict[str, Outcome]:
        walker = _Walker(plan, on_start, on_done)
        nodes = [info.get("Resources", {}) for info in ray.nodes() if info.get("Alive")]
        capacity = self._node_capacity(nodes)
        node_task, shard_task = ray.remote(run_node), ray.remote(run_shard_group)
        env = forwarded_env()
        root = env["SELBENCH_CACHE"] = str(Path(store.root).resolve())
        running: dict[Any, tuple[Node, list[int] | None]] = {}
        fans: dict[str, _FanOut] = {}

        def options(need: dict[str, float], name: str) -> dict[str, Any]:
            return {"num_cpus": need["cpus"], "num_gpus": need["gpus"], "memory": int(need["memory_gb"] * 2**30),
                    "max_retries": self.max_retries, "retry_exceptions": True, "name": name}

        def submit(node: Node, need: dict[str, float]) -> None:
            ref = node_task.options(**options(need, node.id)).remote(node.step, root, env, self.log_file, node.id)
            running[ref] = (node, None)

        while walker.pending or running:
            for node in walker.ready():
                need = fit_request(node.resources, capacity)
                walker.start(node)
                groups = self._shard_groups(node, store, need, nodes)
                if not groups:
                    submit(node, need)
                    continue
                fans[node.id] = _FanOut(need, tasks=len(groups), left=len(groups))
                log.info("%s: %d shards left, spread over %d Ray tasks", node.id, sum(map(len, groups)), len(groups))
                for group in groups:
                    ref = shard_task.options(**options(need, f"{node.id}[{group[0]}-{group[-1]}]")).remote(
                        node.step, root, group, env, self.log_file, node.id)
                    running[ref] = (node, group)
            if not running:
                continue
            finished, _ = ray.wait(list(running), num_returns=1)
            for ref in finished:
                node, group = running.pop(ref)
                error = None
                try:
                    value = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - RayTaskError after the retries
                    cause = getattr(exc, "cause", None) or exc
                    log.error("%s failed on Ray: %s", node.id if group is None else f"{node.id} shards {group}", exc)
                    error = _one_line(cause)
                if group is None:  # a whole node, or the assembly of a fanned-out one
                    outcome = value if error is None else Outcome(node.id, False, error=error,
                                                                   attempts=self.max_retries + 1)
                    if (fan := fans.pop(node.id, None)) is not None:
                        outcome.shard_tasks, outcome.seconds = fan.tasks, time.perf_counter() - fan.started
                    walker.finish(outcome)
                    continue
                fan = fans[node.id]
                fan.left -= 1
                if error is None and value[1] is not None:  # bad input: not retried
                    error = value[1]
                elif error is not None:
                    fan.attempts = self.max_retries + 1
                fan.error = fan.error or error
                if fan.left:
                    continue
                if fan.error is None:
                    submit(node, fan.need)  # every shard is saved: the step's own run only assembles
                else:
                    del fans[node.id]
                    walker.finish(Outcome(node.id, False, error=fan.error, seconds=time.perf_counter() - fan.started,
                                          attempts=fan.attempts, shard_tasks=fan.tasks))
        return walker.outcomes


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """A `HOST:PORT` cluster address must accept a connection (Ray itself retries for minutes before it gives
    up); `auto` and `ray://` addresses are left to Ray."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InputError(f"{address!r} is not auto, HOST:PORT or ray://HOST:PORT", field="address")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise InputError(f"no Ray cluster answers at {address} ({exc.strerror or exc}); start one with "
                         "`ray start --head` or drop --address for a local Ray", field="address") from None

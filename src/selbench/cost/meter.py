"""The cost meter every step runs under.

    with CostMeter("score:ifd") as meter:
        ...; meter.add_tokens(n)
    record = meter.record   # CostRecord, stored in the step's meta.json

Dollars = wall hours x the node's hourly price + API tokens x their price. Like the study, a step is
charged for the whole node it holds, so selection cost does not shrink with the budget.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selbench.cost.prices import PriceSheet


def detect_device() -> tuple[str, int]:
    """(device kind, device count): ("cuda", n) on a machine with NVIDIA GPUs, else ("cpu", 1).

    Uses torch only when the step already imported it (model steps do); pure steps such as selection
    must not pay torch's ~1.5 s import just to be priced, so they read the driver's GPU list instead.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        if torch.cuda.is_available():
            return "cuda", torch.cuda.device_count()
        return "cpu", 1
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir():
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        count = len(list(gpus.iterdir()))
        if visible is not None:
            count = min(count, len([d for d in visible.split(",") if d.strip()]))
        if count > 0:
            return "cuda", count
    return "cpu", 1


@dataclass
class CostRecord:
    """What one step cost.

    Args:
        step: step name (e.g. "score:ifd", "train").
        wall_seconds: elapsed time.
        device_kind / device_count: what the step held.
        tokens: model tokens processed (forward or training tokens).
        api_input_tokens / api_output_tokens: tokens billed by API providers.
        node_usd / api_usd / usd: dollars for the node time, the API calls, and both.
    """

    step: str
    wall_seconds: float = 0.0
    device_kind: str = "cpu"
    device_count: int = 1
    tokens: int = 0
    api_input_tokens: int = 0
    api_output_tokens: int = 0
    node_usd: float = 0.0
    api_usd: float = 0.0
    usd: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CostRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)

    def __add__(self, other: CostRecord) -> CostRecord:
        return CostRecord(
            step=self.step if self.step == other.step else f"{self.step}+{other.step}",
            wall_seconds=self.wall_seconds + other.wall_seconds,
            device_kind=self.device_kind,
            device_count=max(self.device_count, other.device_count),
            tokens=self.tokens + other.tokens,
            api_input_tokens=self.api_input_tokens + other.api_input_tokens,
            api_output_tokens=self.api_output_tokens + other.api_output_tokens,
            node_usd=self.node_usd + other.node_usd,
            api_usd=self.api_usd + other.api_usd,
            usd=self.usd + other.usd,
        )


class CostMeter:
    """Context manager that times a step and prices it.

    Args:
        step: step name for the record.
        prices: price sheet (default: the study's 8 USD/node-hour).
        device: (kind, count) to charge for; detected when None.
    """

    def __init__(self, step: str, prices: PriceSheet | None = None, device: tuple[str, int] | None = None) -> None:
        self.step = step
        self.prices = prices or PriceSheet()
        self.device = device
        self._started: float | None = None
        self._elapsed = 0.0
        self.tokens = 0
        self.api_tokens: dict[str, list[int]] = {}
        self.record: CostRecord | None = None

    def __enter__(self) -> CostMeter:
        if self.device is None:
            self.device = detect_device()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def add_tokens(self, n: int) -> None:
        self.tokens += int(n)

    def add_api_tokens(self, model: str, input_tokens: int, output_tokens: int) -> None:
        counts = self.api_tokens.setdefault(model, [0, 0])
        counts[0] += int(input_tokens)
        counts[1] += int(output_tokens)

    def add_seconds(self, seconds: float) -> None:
        """Charge extra wall time measured elsewhere (e.g. a resumed run's earlier shards)."""
        self._elapsed += float(seconds)

    def stop(self) -> CostRecord:
        if self._started is not None:
            self._elapsed += time.perf_counter() - self._started
            self._started = None
        kind, count = self.device or ("cpu", 1)
        node_usd = self._elapsed / 3600.0 * self.prices.node_rate(kind)
        api_usd = 0.0
        for model, (tin, tout) in self.api_tokens.items():
            price = self.prices.api_price(model)
            api_usd += tin / 1e6 * price.input_per_1m + tout / 1e6 * price.output_per_1m
        self.record = CostRecord(
            step=self.step,
            wall_seconds=self._elapsed,
            device_kind=kind,
            device_count=count,
            tokens=self.tokens,
            api_input_tokens=sum(v[0] for v in self.api_tokens.values()),
            api_output_tokens=sum(v[1] for v in self.api_tokens.values()),
            node_usd=node_usd,
            api_usd=api_usd,
            usd=node_usd + api_usd,
            extra={"api_models": {m: {"input": v[0], "output": v[1]} for m, v in self.api_tokens.items()}},
        )
        return self.record

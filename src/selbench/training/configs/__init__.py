"""Shipped multi-GPU launch configs: accelerate YAMLs (DeepSpeed ZeRO-2/3, FSDP) and DeepSpeed JSONs.

Use an accelerate YAML with `accelerate launch --config_file ...`, or a DeepSpeed JSON through the
`deepspeed` field of TrainConfig (`--set deepspeed=ds_zero2.json`; a bare shipped name resolves here).
"""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent


def shipped_configs() -> list[str]:
    """Names of the shipped config files."""
    return sorted(p.name for p in CONFIG_DIR.iterdir() if p.suffix in (".yaml", ".json"))


def config_path(name: str) -> Path:
    """Absolute path of a shipped config (`accelerate_zero2.yaml`, `ds_zero3.json`, ...)."""
    path = CONFIG_DIR / name
    if not path.is_file():
        raise ValueError(f"no shipped training config {name!r} (shipped: {', '.join(shipped_configs())})")
    return path

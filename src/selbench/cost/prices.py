"""Price sheet: what an hour of a node and a million API tokens cost.

The default is the study's: 8 USD per hour for its whole 8xA6000 node, whatever part of it a step used
(Diddee & Ippolito, Section 5), and list prices per 1M tokens for API judges/raters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from selbench.errors import InputError


@dataclass(frozen=True)
class ApiPrice:
    """USD per 1M input and output tokens of one API model."""

    input_per_1m: float
    output_per_1m: float


@dataclass(frozen=True)
class PriceSheet:
    """Args:
    node_usd_per_hour: price of one hour of the node a step ran on, per device kind
        ("cuda", "cpu", ...); "default" applies to kinds not listed.
    api: model name -> price per 1M tokens; "default" applies to unlisted models.
    """

    node_usd_per_hour: dict[str, float] = field(default_factory=lambda: {"default": 8.0})
    api: dict[str, ApiPrice] = field(
        default_factory=lambda: {
            "gpt-4-1106-preview": ApiPrice(10.0, 30.0),
            "gpt-4-turbo": ApiPrice(10.0, 30.0),
            "gpt-4": ApiPrice(30.0, 60.0),
            "gpt-3.5-turbo": ApiPrice(0.5, 1.5),
            "gpt-4o": ApiPrice(2.5, 10.0),
            "gpt-4o-mini": ApiPrice(0.15, 0.6),
            "default": ApiPrice(0.0, 0.0),
        }
    )

    def node_rate(self, device_kind: str) -> float:
        return self.node_usd_per_hour.get(device_kind, self.node_usd_per_hour.get("default", 0.0))

    def api_price(self, model: str) -> ApiPrice:
        if model in self.api:
            return self.api[model]
        # Dated snapshots ("gpt-4-turbo-2024-04-09") fall back to their family's price.
        for name in sorted(self.api, key=len, reverse=True):
            if name != "default" and model.startswith(name):
                return self.api[name]
        return self.api.get("default", ApiPrice(0.0, 0.0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_usd_per_hour": dict(self.node_usd_per_hour),
            "api": {k: {"input_per_1m": v.input_per_1m, "output_per_1m": v.output_per_1m} for k, v in self.api.items()},
        }


def load_price_sheet(path: str | Path | None = None) -> PriceSheet:
    """Read a price sheet YAML (safe loader); None gives the study's default.

    YAML shape: `node_usd_per_hour: {default: 8.0, cpu: 0.1}` and
    `api: {gpt-4-turbo: {input_per_1m: 10, output_per_1m: 30}}`. Listed entries replace the defaults.
    """
    sheet = PriceSheet()
    if path is None:
        return sheet
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read price sheet: {exc}", path=path) from exc
    if not isinstance(raw, dict):
        raise InputError("a price sheet is a mapping", path=path)
    node = dict(sheet.node_usd_per_hour)
    for kind, rate in (raw.get("node_usd_per_hour") or {}).items():
        if not isinstance(rate, (int, float)) or rate < 0:
            raise InputError(f"must be a non-negative number, got {rate!r}", path=path, field=f"node_usd_per_hour.{kind}")
        node[str(kind)] = float(rate)
    api = dict(sheet.api)
    for model, price in (raw.get("api") or {}).items():
        try:
            api[str(model)] = ApiPrice(float(price["input_per_1m"]), float(price["output_per_1m"]))
        except (TypeError, KeyError, ValueError) as exc:
            raise InputError("needs numeric input_per_1m and output_per_1m", path=path, field=f"api.{model}") from exc
    return PriceSheet(node_usd_per_hour=node, api=api)

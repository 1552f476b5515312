"""Cost accounting: every step records wall seconds, device, tokens, API tokens and dollars."""

from selbench.cost.meter import CostMeter, CostRecord, detect_device
from selbench.cost.prices import PriceSheet, load_price_sheet

__all__ = ["CostMeter", "CostRecord", "PriceSheet", "detect_device", "load_price_sheet"]

"""Selection: scores in, pool indices out; manifests record what was chosen, from what, at what cost."""

from selbench.selection.base import STRATEGIES, Pool, Selection, Strategy

__all__ = ["STRATEGIES", "Pool", "Selection", "Strategy"]

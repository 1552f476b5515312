"""The benchmark registry.

Each benchmark lives in its own module and exposes one entry point named `evaluate`; built-ins register
here as lazy "module:attr" strings so that `selbench --help` never imports torch or lm-eval. Outside
packages add benchmarks through the `selbench.benchmarks` entry-point group.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from selbench.registry import Registry

BENCHMARKS: Registry[Callable[..., Any]] = Registry("benchmark", "selbench.benchmarks")

BENCHMARKS.register("ifeval", "selbench.evaluation.ifeval:evaluate")
BENCHMARKS.register("alpacaeval", "selbench.evaluation.alpacaeval:evaluate")
BENCHMARKS.register("lc-winrate", "selbench.evaluation.lc_winrate:evaluate")
BENCHMARKS.register("llmbar", "selbench.evaluation.llmbar:evaluate")
BENCHMARKS.register("openllm", "selbench.evaluation.openllm:evaluate")

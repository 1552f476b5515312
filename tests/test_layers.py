"""The layers of DESIGN.md: a module imports only from its own layer or the layers below it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "selbench"

# DESIGN.md "Layers", bottom up.
RANKS = {
    **dict.fromkeys(["store", "cost", "hashing", "errors", "registry", "step"], 0),
    "assets": 1,
    "llm": 2,
    **dict.fromkeys(["data", "scoring", "selection", "training", "generation", "evaluation"], 3),
    **dict.fromkeys(["analysis", "report"], 4),
    **dict.fromkeys(["runner", "study"], 5),
    **dict.fromkeys(["cli", "api", "__main__", "__init__"], 6),
}


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "__init__"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "selbench" or name.startswith("selbench.")}


def test_no_module_imports_from_a_layer_above_its_own():
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts)
        if module == "selbench.runner.store":  # the deprecated alias of selbench.store, kept for one release
            continue
        own = RANKS[_layer(module)]
        for imported in _imports(path):
            if imported == "selbench":
                continue
            if RANKS.get(_layer(imported), 6) > own:
                violations.append(f"{module} imports {imported}")
    assert not violations, "\n".join(violations)


def test_importing_the_ground_floor_loads_no_stage():
    code = ("import sys, selbench.store, selbench.step, selbench.cost, selbench.hashing, selbench.errors, "
            "selbench.registry; print(' '.join(sorted(m for m in sys.modules if m.startswith('selbench'))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    stages = [m for m in loaded if m != "selbench" and RANKS.get(_layer(m), 6) > 0]
    assert not stages, stages
    assert "torch" not in subprocess.run([sys.executable, "-c", code.replace("m.startswith('selbench')", "True")],
                                         capture_output=True, text=True, check=True).stdout.split()

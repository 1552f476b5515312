"""The README tour keeps its promises (issue 10, item 11): measured times, and commands that do not depend on
the folder they run in."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _tour() -> tuple[str, str]:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## (A tour[^\n]*)\n(.*?)^## ", text, re.M | re.S)
    assert match, "README has no '## A tour' section"
    return match.group(1), match.group(2)


def _commands(block: str) -> list[str]:
    """The tour's shell commands, continuation lines joined, comments dropped."""
    code = "\n".join(re.findall(r"```bash\n(.*?)```", block, re.S))
    joined = re.sub(r"\\\n\s*", " ", code)
    return [line.split("  #")[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def test_the_tour_states_measured_times_for_every_selbench_step():
    title, block = _tour()
    assert "minutes" in title and "5-minute" not in title
    assert "measured" in block and "load" in block  # how, where and under what load the times were taken
    code = re.findall(r"```bash\n(.*?)```", block, re.S)[0]
    lines = code.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("selbench ") and not line.startswith("selbench select "):
            # the time sits on the command's last line (after its continuation lines)
            end = i
            while lines[end].rstrip().endswith("\\"):
                end += 1
            assert re.search(r"#.*\d+(\.\d+)? (s|min)\b", lines[end]), f"no measured time for: {line}"


def test_the_tour_runs_from_any_folder():
    _, block = _tour()
    commands = _commands(block)
    first_selbench = next(i for i, c in enumerate(commands) if c.startswith("selbench "))
    assert any(c.startswith("cd ") for c in commands[:first_selbench]), "the tour should leave the checkout first"
    for command in commands[first_selbench:]:
        assert "../" not in command, f"a path relative to the working directory's parent: {command}"

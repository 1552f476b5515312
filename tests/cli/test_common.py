"""`--json` output is strict JSON: one object, last line, no NaN tokens."""

from __future__ import annotations

import json

import numpy as np

from selbench.cli.common import emit


def test_emit_json_turns_non_finite_numbers_into_null(capsys):
    emit({"kappa": float("nan"), "nested": {"x": np.float64("inf")}, "ok": [1.5, 2]}, True)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert json.loads(out, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c))) == {
        "kappa": None,
        "nested": {"x": None},
        "ok": [1.5, 2],
    }

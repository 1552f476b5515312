"""Overlap (shared / budget) and Jaccard between selections."""

from __future__ import annotations

import pytest

from selbench.analysis.overlap import overlap_matrix, pair_overlap


def test_matrix_values_by_hand():
    overlap, jaccard = overlap_matrix({"a": ["1", "2", "3", "4"], "b": ["3", "4", "5", "6"], "c": ["9"]})
    assert overlap["a"]["b"] == overlap["b"]["a"] == 0.5
    assert jaccard["a"]["b"] == pytest.approx(2 / 6)
    assert overlap["a"]["c"] == 0.0 and jaccard["c"]["c"] == 1.0 and overlap["a"]["a"] == 1.0


def test_unequal_budgets_divide_by_the_row():
    overlap, jaccard = overlap_matrix({"small": ["1", "2"], "big": ["1", "2", "3", "4"]})
    assert overlap["small"]["big"] == 1.0 and overlap["big"]["small"] == 0.5
    assert jaccard["small"]["big"] == jaccard["big"]["small"] == 0.5


def test_order_does_not_matter_and_empty_is_zero():
    assert pair_overlap(["1", "2"], ["2", "1"]) == (1.0, 1.0)
    assert pair_overlap([], ["1"]) == (0.0, 0.0)

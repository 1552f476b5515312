"""The component registry: lazy entries, duplicates refused, near-name suggestions."""

from __future__ import annotations

import pytest

from selbench.registry import Registry


def test_lazy_entry_is_imported_on_first_get():
    reg: Registry = Registry("thing")
    reg.register("dumps", "json:dumps")
    import json

    assert reg.get("dumps") is json.dumps
    assert reg.names() == ["dumps"]


def test_decorator_and_duplicate_refused():
    reg: Registry = Registry("strategy")

    @reg.register("longest")
    def pick(x):
        return x

    assert reg.get("longest") is pick
    with pytest.raises(ValueError, match="already registered"):
        reg.register("longest", lambda x: x)


def test_unknown_name_suggests_near_names():
    reg: Registry = Registry("strategy")
    reg.register("longest", "json:dumps")
    reg.register("random", "json:loads")
    with pytest.raises(KeyError, match="did you mean 'longest'"):
        reg.get("longset")

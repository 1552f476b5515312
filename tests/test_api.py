"""Every public API name resolves to a real function, without importing torch up front."""

from __future__ import annotations

import subprocess
import sys

import pytest

from selbench import api


@pytest.mark.parametrize("name", api.__all__)
def test_public_name_resolves(name):
    assert callable(getattr(api, name))


def test_import_does_not_pull_torch():
    code = "import sys, selbench.api, selbench.cli.main; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="public names"):
        api.does_not_exist  # noqa: B018

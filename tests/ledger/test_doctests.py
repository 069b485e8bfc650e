"""The examples in the ledger's docstrings stay true."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import healthmesh.ledger


def test_docstring_examples() -> None:
    failed = attempted = 0
    for mod in pkgutil.walk_packages(healthmesh.ledger.__path__, "healthmesh.ledger."):
        result = doctest.testmod(importlib.import_module(mod.name), verbose=False)
        failed += result.failed
        attempted += result.attempted
    assert attempted >= 15
    assert failed == 0

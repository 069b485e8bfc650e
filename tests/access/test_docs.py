"""docs/security.md must keep up with the code: every CLI command, the purpose-of-use header,
the supported algorithms and OAuth errors are documented."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import healthmesh.access
from healthmesh.access.cli import clients
from healthmesh.access.context import PURPOSE_OF_USE, PURPOSE_OF_USE_HEADER
from healthmesh.access.jwks import ASSERTION_ALGORITHMS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()


@pytest.mark.parametrize("command", sorted(clients.commands))
def test_every_clients_command_is_documented(command) -> None:
    assert f"clients {command}" in DOC


def test_header_algorithms_and_errors_documented() -> None:
    assert PURPOSE_OF_USE_HEADER in DOC
    for alg in ASSERTION_ALGORITHMS:
        assert alg in DOC
    for error in ("invalid_request", "unsupported_grant_type", "invalid_client", "invalid_scope"):
        assert f"`{error}`" in DOC
    for code in ("TREAT", "HRESCH", "PUBHLTH"):
        assert code in PURPOSE_OF_USE
        assert f"`{code}`" in DOC


MODULES = sorted(
    m.name for m in pkgutil.iter_modules(healthmesh.access.__path__, "healthmesh.access.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name) -> None:
    """Every example in the docstrings of healthmesh.access runs as written."""
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0


def test_every_module_has_a_docstring() -> None:
    for name in MODULES:
        assert (importlib.import_module(name).__doc__ or "").strip(), name


def test_public_face_is_pure() -> None:
    """``import healthmesh.access`` loads neither the web framework nor the database layer."""
    import subprocess
    import sys

    code = (
        "import sys, healthmesh.access as a; "
        "bad = [m for m in ('fastapi', 'starlette', 'sqlalchemy') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

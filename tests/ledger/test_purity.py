"""The ledger's public face stays pure: no web framework, no database layer, no HTTP client."""

from __future__ import annotations

import subprocess
import sys


def test_public_face_imports_no_framework_or_database() -> None:
    code = (
        "import sys, healthmesh.ledger\n"
        "bad = [m for m in ('sqlalchemy', 'fastapi', 'starlette', 'httpx', 'psycopg')"
        " if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

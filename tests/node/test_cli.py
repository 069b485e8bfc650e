"""The node's command line: client registration, bulk import (the demo: tests/hub/test_demo.py)."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
from click.testing import CliRunner

from healthmesh.cli import main


def test_clients_add_prints_secret_once_and_stores_hash(tmp_path: Path) -> None:
    db = str(tmp_path / "node.sqlite")
    result = CliRunner().invoke(main, ["node", "clients", "--db", db, "add", "lab",
                                       "--scopes", "system/Observation.cruds"])
    assert result.exit_code == 0, result.output
    secret = next(ln.split(":", 1)[1].strip().strip('"') for ln in result.output.splitlines()
                  if "secret" in ln.lower() and ":" in ln)
    assert len(secret) > 20
    assert secret.encode() not in (tmp_path / "node.sqlite").read_bytes()
    listed = CliRunner().invoke(main, ["node", "clients", "--db", db, "list"])
    assert listed.exit_code == 0 and "lab" in listed.output


def test_import_command_reports_and_quarantines(tmp_path: Path) -> None:
    f = tmp_path / "in.ndjson.gz"
    f.write_bytes(gzip.compress(orjson.dumps({"resourceType": "Patient", "gender": "male"})
                                + b"\n{bad\n"))
    result = CliRunner().invoke(main, ["node", "import", str(f), "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "received 2, created 1, updated 0, quarantined 1" in result.output
    assert list((tmp_path / "quarantine").glob("*.ndjson"))

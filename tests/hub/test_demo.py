"""``healthmesh demo --check``: a hub and four institutions from the synthetic region over real
HTTP, one study end to end, results and URLs printed; a second start reuses the data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from healthmesh.cli import main


@pytest.mark.slow
def test_demo_runs_a_study_end_to_end(tmp_path: Path) -> None:
    args = ["demo", "--check", "--port", "0", "--people", "400", "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = result.output
    for inst in ("H01", "H02", "C01", "CDC01"):
        assert re.search(rf"{inst}\s+FHIR base:\s+http://127\.0\.0\.1:\d+/fhir  token \S+\.\S+\.\S+", out)
    assert "[adults] done" in out and "[diabetes_model] done" in out
    assert re.search(r"\[sex_by_diabetes\] (done|failed)", out)
    assert re.search(r"\s+age\s+[+-]\d+\.\d+\s+\(se", out)
    assert "researcher token:" in out and "/auth/token" in out
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0, again.output
    assert "reusing the nodes' databases" in again.output

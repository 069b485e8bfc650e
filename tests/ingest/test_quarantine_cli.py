"""``healthmesh ingest`` and ``healthmesh quarantine list|show|retry`` end to end."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.fhir.store import FhirStore

GOOD = b"MSH|^~\\&|HIS|H1|||20240101||ADT^A04|1|P|2.5\rPID|1||M1^^^H1^MR||Li^Lei||19800101|M\r"
BAD = b"MSH|^~\\&|HIS|H1|||20240101||ADT^A04|2|P|2.5\rPID|1||M2^^^H1^MR||Li^Na||1980-01-01|F\r"


def invoke(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_ingest_summary_and_quarantine_round_trip(tmp_path: Path) -> None:
    db = str(tmp_path / "node.sqlite")
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.hl7").write_bytes(GOOD + b"\n" + BAD)
    (src / "README.md").write_text("not data")
    out = invoke("ingest", str(src), "--institution", "H1", "--db", db)
    assert "skipped 1 file(s) of unknown format" in out
    assert "received 2, converted 1 (created 1, updated 0, unchanged 0), quarantined 1" in out
    assert "not a valid HL7 date/time" in out
    again = invoke("ingest", str(src / "a.hl7"), "--institution", "H1", "--db", db)
    assert "received 2, converted 1 (created 0, updated 0, unchanged 1), quarantined 1" in again

    listing = invoke("quarantine", "list", "--db", db)
    assert (
        "[PID-7]  not a valid HL7 date/time" in listing and "1 open" in listing
    )  # same bytes: one entry
    entry_id = listing.split()[0]
    shown = invoke("quarantine", "show", entry_id, "--db", db)
    assert "location:    PID-7" in shown and "Li^Na" not in shown  # no patient data by default
    assert "Li^Na" in invoke("quarantine", "show", entry_id, "--db", db, "--bytes")

    retried = invoke("quarantine", "retry", entry_id, "--db", db)
    assert "0 of 1 resolved" in retried and "PID-7" in retried
    assert FhirStore(db).count("Patient") == 1


def test_unknown_format_and_missing_csv_mapping_fail_clearly(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"??")
    result = CliRunner().invoke(
        main, ["ingest", str(f), "--institution", "H1", "--db", str(tmp_path / "n.sqlite")]
    )
    assert result.exit_code != 0
    assert "cannot tell the format" in result.output
    result = CliRunner().invoke(
        main,
        [
            "ingest",
            str(f),
            "--institution",
            "H1",
            "--format",
            "csv",
            "--db",
            str(tmp_path / "n.sqlite"),
        ],
    )
    assert result.exit_code != 0 and "needs --mapping" in result.output


def test_watch_once_moves_files(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.hl7").write_bytes(GOOD)
    (inbox / "bad.hl7").write_bytes(BAD)
    (inbox / "junk.xyz").write_bytes(b"??")
    out = invoke(
        "ingest",
        "--watch",
        str(inbox),
        "--once",
        "--institution",
        "H1",
        "--db",
        str(tmp_path / "n.sqlite"),
    )
    assert "received 3, converted 1" in out and "quarantined 2" in out
    assert sorted(p.name for p in (inbox / "processed").iterdir()) == ["good.hl7"]
    assert sorted(p.name for p in (inbox / "quarantine").iterdir()) == ["bad.hl7", "junk.xyz"]
    assert not [p for p in inbox.iterdir() if p.is_file()]

"""``healthmesh linkage`` end to end: plaintext link, node encode, hub PPRL, patient index."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from healthmesh.cli import main

from .cn_synth import hospital_and_clinic
from .metrics import prf


def _write(path: Path, rows: list[dict[str, str | None]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _pairs(path: Path) -> set[tuple[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return {(r["left_id"], r["right_id"]) for r in csv.DictReader(fh)}


@pytest.mark.slow
def test_linkage_cli_round_trip(shared_data: Path, tmp_path: Path) -> None:
    hosp, clinic, truth = hospital_and_clinic(shared_data, 300, seed=5)
    _write(tmp_path / "h.csv", hosp)
    _write(tmp_path / "c.csv", clinic)
    (tmp_path / "secret").write_bytes(b"0123456789abcdef0123456789abcdef")
    run = CliRunner().invoke
    args = ["linkage", "link", str(tmp_path / "h.csv"), str(tmp_path / "c.csv")]
    res = run(main, [*args, "--out", str(tmp_path / "plain.csv")])
    assert res.exit_code == 0, res.output
    p, r, f1 = prf(_pairs(tmp_path / "plain.csv"), truth)
    assert f1 >= 0.97, (p, r)

    for name in ("h", "c"):
        res = run(
            main,
            [
                "linkage", "encode", str(tmp_path / f"{name}.csv"),
                "--secret-file", str(tmp_path / "secret"), "--out", str(tmp_path / f"{name}.npz"),
            ],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
    res = run(
        main,
        ["linkage", "pprl", str(tmp_path / "h.npz"), str(tmp_path / "c.npz"),
         "--out", str(tmp_path / "pprl.csv")],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert prf(_pairs(tmp_path / "pprl.csv"), truth)[2] >= 0.98

    db = str(tmp_path / "hub.db")
    assert run(main, ["linkage", "mpi", "register", "--db", db, "hosp", "Hospital"]).exit_code == 0
    refused = run(main, ["linkage", "mpi", "submit", "--db", db, "--institution", "clinic",
                         str(tmp_path / "c.npz")])  # fmt: skip
    assert refused.exit_code != 0
    assert "not registered" in refused.output
    res = run(main, ["linkage", "mpi", "submit", "--db", db, "--institution", "hosp",
                     str(tmp_path / "h.npz")])  # fmt: skip
    assert res.exit_code == 0
    assert "new: " in res.output
    assert run(main, ["linkage", "mpi", "reviews", "--db", db]).exit_code == 0

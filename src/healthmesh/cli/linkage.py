"""``healthmesh linkage``: plaintext linkage, node-side encoding, hub-side PPRL and the
master patient index. Commands parse arguments and call :mod:`healthmesh.identity`."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import click
import pandas as pd

from healthmesh.errors import HealthmeshError
from healthmesh.identity.engine.linker import link
from healthmesh.identity.engine.presets import chinese_spec, febrl_spec, prepare_febrl
from healthmesh.identity.mpi import curation
from healthmesh.identity.mpi.calibration import calibrate
from healthmesh.identity.mpi.service import Encoding, MasterPatientIndex
from healthmesh.identity.pprl.encode import encode_table, load_encoded, save_encoded
from healthmesh.identity.pprl.linker import link_encoded
from healthmesh.identity.pprl.presets import (
    CHINESE_BLOCKING,
    FEBRL_BLOCKING,
    chinese_schema,
    febrl_schema,
)
from healthmesh.identity.standardise import standardise_record

PRESETS = click.Choice(["chinese", "febrl"])


def _read_records(path: Path, preset: str) -> list[dict[str, Any]]:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if preset == "febrl":
        prepared = prepare_febrl(frame).drop(columns=["soc_sec_id"])
        return list(prepared.to_dict("records"))
    rows = [{k: (v or None) for k, v in r.items()} for r in frame.to_dict("records")]
    return [standardise_record(r) for r in rows]


def _write_pairs(path: Path, pairs: list[tuple[object, object]], header: tuple[str, str]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(pairs)


def _secret(path: Path) -> bytes:
    data = path.read_bytes().strip()
    if len(data) < 16:
        raise click.UsageError("the linkage secret file must hold at least 16 bytes")
    return data


@click.group("linkage")
def group() -> None:
    """Record linkage, privacy-preserving linkage and the master patient index."""


@group.command("link")
@click.argument("left", type=click.Path(exists=True, path_type=Path))
@click.argument("right", type=click.Path(exists=True, path_type=Path), required=False)
@click.option("--preset", type=PRESETS, default="chinese", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def link_cmd(left: Path, right: Path | None, preset: str, out: Path) -> None:
    """Plaintext linkage of LEFT and RIGHT CSVs (or deduplication of LEFT alone)."""
    if preset == "febrl":
        a = prepare_febrl(pd.read_csv(left, dtype=str))
        b = prepare_febrl(pd.read_csv(right, dtype=str)) if right else None
        spec = febrl_spec()
    else:
        a = pd.DataFrame(_read_records(left, preset))
        b = pd.DataFrame(_read_records(right, preset)) if right else None
        spec = chinese_spec()
    result = link(a, b, spec)
    _write_pairs(out, result.matches(), ("left_id", "right_id"))
    click.echo(f"{int(result.accepted.sum())} links from {len(result.left)} candidate pairs")


@group.command("encode")
@click.argument("records", type=click.Path(exists=True, path_type=Path))
@click.option("--secret-file", type=click.Path(exists=True, path_type=Path), required=True)
@click.option("--preset", type=PRESETS, default="chinese", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
def encode_cmd(records: Path, secret_file: Path, preset: str, out: Path) -> None:
    """Node side: encode a CSV of patients into CLKs and keyed tokens (an .npz file)."""
    rows = _read_records(records, preset)
    if preset == "febrl":
        table = encode_table(
            _secret(secret_file), febrl_schema(), rows, blocking_rules=FEBRL_BLOCKING
        )
    else:
        table = encode_table(
            _secret(secret_file),
            chinese_schema(),
            rows,
            identity_field="id_number",
            blocking_rules=CHINESE_BLOCKING,
        )
    save_encoded(table, str(out))
    click.echo(f"encoded {len(table)} records")


@group.command("pprl")
@click.argument("left", type=click.Path(exists=True, path_type=Path))
@click.argument("right", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--threshold", type=float, default=None, help="default: estimated, no labels")
def pprl_cmd(left: Path, right: Path, out: Path, threshold: float | None) -> None:
    """Hub side: link two encoded tables; never sees plaintext."""
    a, b = load_encoded(str(left)), load_encoded(str(right))
    result = link_encoded(a, b, threshold=threshold)
    _write_pairs(out, result.links(a, b), ("left_id", "right_id"))
    click.echo(
        f"{int(result.accepted.sum())} links; threshold {result.estimate.threshold:.3f}; "
        f"{result.candidates} comparisons"
    )


@group.group("mpi")
def mpi_group() -> None:
    """The master patient index at the hub."""


DB = click.option("--db", required=True, help="SQLite path or postgresql:// URL")


@mpi_group.command("register")
@DB
@click.argument("institution")
@click.argument("name")
@click.option(
    "--client-id", default=None, help="The hub OAuth client that submits for it (node link)."
)
def mpi_register(db: str, institution: str, name: str, client_id: str | None) -> None:
    """Allow INSTITUTION to submit encodings (over HTTP: from its bound client only)."""
    MasterPatientIndex.open(db).register_institution(institution, name, client_id)
    click.echo(f"registered {institution}")


@mpi_group.command("submit")
@DB
@click.option("--institution", required=True)
@click.argument("encoded", type=click.Path(exists=True, path_type=Path))
def mpi_submit(db: str, institution: str, encoded: Path) -> None:
    """Link every record of an encoded table into the index, one at a time."""
    mpi = MasterPatientIndex.open(db)
    table = load_encoded(str(encoded))
    counts: dict[str, int] = {}
    try:
        for i in range(len(table)):
            tok = int(table.id_tokens[i])
            enc = Encoding(
                table.clks[i].tobytes(),
                tok.to_bytes(8, "big") if tok else None,
                [int(x) or None for x in table.blocking[i]],
            )
            status = mpi.submit(institution, str(table.ids[i]), enc, actor="cli").status
            counts[status] = counts.get(status, 0) + 1
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))


@mpi_group.command("calibrate")
@DB
@click.argument("left", type=click.Path(exists=True, path_type=Path))
@click.argument("right", type=click.Path(exists=True, path_type=Path))
def mpi_calibrate(db: str, left: Path, right: Path) -> None:
    """Set the link/review thresholds from two encoded samples (no labels needed)."""
    th = calibrate(MasterPatientIndex.open(db), load_encoded(str(left)), load_encoded(str(right)))
    click.echo(f"upper {th.upper:.4f}, lower {th.lower:.4f}")


@mpi_group.command("reviews")
@DB
def mpi_reviews(db: str) -> None:
    """List the open review items (uncertain band)."""
    for item in curation.open_reviews(MasterPatientIndex.open(db)):
        click.echo(
            f"{item['review_id']}\t{item['score']:.3f}\t{item['institution']}\t"
            f"{item['local_id']}\t{item['candidate_enterprise_id']}"
        )


@mpi_group.command("resolve")
@DB
@click.argument("review_id", type=int)
@click.option("--same/--different", required=True)
@click.option("--actor", required=True)
def mpi_resolve(db: str, review_id: int, same: bool, actor: str) -> None:
    """Close a review item (``--same`` merges the two enterprise ids)."""
    curation.resolve_review(MasterPatientIndex.open(db), review_id, same_person=same, actor=actor)
    click.echo("resolved")


@mpi_group.command("merge")
@DB
@click.argument("keep")
@click.argument("absorb")
@click.option("--actor", required=True)
def mpi_merge(db: str, keep: str, absorb: str, actor: str) -> None:
    """Merge enterprise id ABSORB into KEEP."""
    audit_id = curation.merge(MasterPatientIndex.open(db), keep, absorb, actor)
    click.echo(f"merged (audit {audit_id})")


@mpi_group.command("unmerge")
@DB
@click.argument("institution")
@click.argument("local_id")
@click.option("--actor", required=True)
def mpi_unmerge(db: str, institution: str, local_id: str, actor: str) -> None:
    """Split one local record out into a new enterprise id."""
    new_id = curation.unmerge_record(MasterPatientIndex.open(db), institution, local_id, actor)
    click.echo(new_id)

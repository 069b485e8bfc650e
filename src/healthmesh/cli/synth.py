"""``healthmesh synth``: synthetic data (a region of hospitals, clinics, a CDC, pharmacies)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import click


@click.group()
def group() -> None:
    """Synthetic data for demonstrations, tests and benchmarks."""


@group.command("region")
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--people", type=int, default=20_000, show_default=True)
@click.option("--hospitals", type=int, default=3, show_default=True)
@click.option("--clinics", type=int, default=5, show_default=True)
@click.option("--cdc", type=int, default=1, show_default=True)
@click.option("--pharmacies", type=int, default=2, show_default=True)
@click.option("--days", type=int, default=730, show_default=True)
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default="2024-01-01", show_default=True)
@click.option("--outbreaks", type=int, default=4, show_default=True, help="Labelled ILI outbreaks.")
def region(
    out: Path,
    seed: int,
    people: int,
    hospitals: int,
    clinics: int,
    cdc: int,
    pharmacies: int,
    days: int,
    start: dt.datetime,
    outbreaks: int,
) -> None:
    """Generate a region whose institutions export HL7 v2, CSV and DICOM, with truth files."""
    from healthmesh.synth.region import RegionConfig, generate_region  # pydicom: only when used

    config = RegionConfig(
        seed=seed,
        people=people,
        hospitals=hospitals,
        clinics=clinics,
        cdc=cdc,
        pharmacies=pharmacies,
        days=days,
        start=start.date(),
        outbreaks=outbreaks,
    )
    began = time.perf_counter()
    summary = generate_region(config, out)
    elapsed = time.perf_counter() - began
    click.echo(
        f"{'institution':<12}{'kind':<10}{'patients':>9}{'visits':>9}{'messages':>9}"
        f"{'sales':>8}{'images':>8}"
    )
    for inst_id, info in summary.institutions.items():
        c = info["counts"]
        click.echo(
            f"{inst_id:<12}{info['kind']:<10}{c.get('patients', 0):>9}{c.get('visits', 0):>9}"
            f"{c.get('hl7_messages', 0):>9}{c.get('sales', 0):>8}{c.get('imaging_studies', 0):>8}"
        )
    click.echo(
        f"{summary.people} people, {summary.outbreaks} labelled outbreaks, "
        f"{summary.files} files, {summary.bytes / 1e6:.1f} MB in {elapsed:.1f} s -> {out}"
    )


@group.command("mllp")
@click.argument("region_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--hospital", required=True, help="Hospital id in the region, e.g. H01.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=2575, show_default=True)
@click.option("--limit", type=int, default=None, help="Send only the first N messages.")
def mllp(region_dir: Path, hospital: str, host: str, port: int, limit: int | None) -> None:
    """Replay a generated hospital's HL7 v2 messages to an MLLP listener, in time order."""
    from healthmesh.synth.region.replay import replay_mllp

    began = time.perf_counter()
    try:
        codes = replay_mllp(region_dir, hospital, host, port, limit)
    except OSError as exc:
        raise click.ClickException(f"MLLP connection failed ({type(exc).__name__})") from exc
    elapsed = time.perf_counter() - began
    total = sum(codes.values())
    click.echo(
        f"sent {total} messages in {elapsed:.1f} s: "
        + ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))
    )


@group.command("load")
@click.argument("region_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--nodes",
    "nodes",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for one SQLite node per institution (<id>.sqlite).",
)
@click.option("--institution", "only", multiple=True, help="Only these institutions.")
def load(region_dir: Path, nodes: Path, only: tuple[str, ...]) -> None:
    """Ingest a generated region into one node per institution and reconcile the counts."""
    from healthmesh.synth.region.ingest import ingest_institution, region_institutions

    nodes.mkdir(parents=True, exist_ok=True)
    click.echo(
        f"{'institution':<12}{'received':>9}{'converted':>10}{'quarantined':>12}"
        f"{'unchanged':>10}{'balanced':>9}{'seconds':>8}"
    )
    unbalanced = []
    for inst in region_institutions(region_dir):
        if only and inst not in only:
            continue
        result = ingest_institution(region_dir, inst, nodes / f"{inst}.sqlite")
        click.echo(
            f"{inst:<12}{result.received:>9}{result.converted:>10}"
            f"{result.quarantined:>12}{result.unchanged:>10}{result.balanced!s:>9}"
            f"{result.seconds:>8.1f}"
        )
        if not result.balanced:
            unbalanced.append(inst)
    if unbalanced:
        raise click.ClickException(
            "received != converted + quarantined for " + ", ".join(unbalanced)
        )

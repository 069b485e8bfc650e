"""``healthmesh quarantine list|show|retry``: inspect and retry quarantined source records.
Only parses arguments and calls ``healthmesh.ingest``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from healthmesh.errors import HealthmeshError

db_opt = click.option("--db", default=None, help="SQLite path or postgresql:// URL of the node.")
data_dir_opt = click.option(
    "--data-dir", type=click.Path(path_type=Path), default=None, help="Node data directory."
)


def _database(db: str | None, data_dir: Path | None) -> str:
    from healthmesh.cli.ingest import _database as resolve

    return resolve(db, data_dir)


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def group() -> None:
    """Records that could not be converted, with their bytes, reason and location."""


@group.command("list")
@db_opt
@data_dir_opt
@click.option("--institution", default=None, help="Only this institution's entries.")
@click.option("--all", "show_all", is_flag=True, help="Include resolved entries.")
@click.option("--limit", type=int, default=100, show_default=True)
def list_cmd(
    db: str | None, data_dir: Path | None, institution: str | None, show_all: bool, limit: int
) -> None:
    """One line per entry: id, status, format, source, location, reason."""
    from healthmesh.ingest.quarantine import QuarantineStore

    q = QuarantineStore(_database(db, data_dir))
    rows = q.list(institution=institution, status=None if show_all else "open", limit=limit)
    for e in rows:
        click.echo(
            f"{e.id:6d}  {e.status:8s}  {e.format:6s}  {e.institution}  {e.source_ref}  "
            f"[{e.location}]  {e.reason}"
        )
    click.echo(f"{len(rows)} shown, {q.count(institution=institution)} open")


@group.command()
@click.argument("entry_id", type=int)
@db_opt
@data_dir_opt
@click.option("--bytes", "show_bytes", is_flag=True, help="Print the source bytes as well.")
def show(entry_id: int, db: str | None, data_dir: Path | None, show_bytes: bool) -> None:
    """An entry's details; the source bytes (patient data) only with --bytes."""
    from healthmesh.ingest.quarantine import QuarantineStore

    try:
        e = QuarantineStore(_database(db, data_dir)).get(entry_id)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"id:          {e.id}")
    click.echo(f"status:      {e.status} (attempts {e.attempts})")
    click.echo(f"institution: {e.institution}")
    click.echo(f"format:      {e.format}")
    click.echo(f"source:      {e.source_ref}")
    click.echo(f"location:    {e.location}")
    click.echo(f"reason:      {e.reason}")
    click.echo(f"received:    {_when(e.received_at)} UTC")
    click.echo(f"size:        {len(e.source_bytes)} bytes")
    if show_bytes:
        click.echo(e.source_bytes.decode("utf-8", "replace").replace("\r", "\n"))


@group.command()
@click.argument("entry_ids", nargs=-1, type=int)
@db_opt
@data_dir_opt
@click.option("--institution", default=None, help="Retry all open entries of an institution.")
@click.option(
    "--mapping",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Mapping file for csv entries.",
)
def retry(
    entry_ids: tuple[int, ...],
    db: str | None,
    data_dir: Path | None,
    institution: str | None,
    mapping: Path | None,
) -> None:
    """Convert entries again (all open ones when no ids are given) and write what converts."""
    from healthmesh.fhir.store import FhirStore
    from healthmesh.ingest.pipeline import Pipeline
    from healthmesh.ingest.pipeline import retry as retry_entry
    from healthmesh.ingest.quarantine import QuarantineStore
    from healthmesh.ingest.registry import adapter_for

    database = _database(db, data_dir)
    q = QuarantineStore(database)
    ids = list(entry_ids) or [e.id for e in q.list(institution=institution)]
    store = FhirStore(database)
    resolved = 0
    try:
        for entry_id in ids:
            entry = q.get(entry_id)
            pipeline = Pipeline(store, q, entry.institution)
            try:
                adapter = adapter_for(entry.format, institution=entry.institution, mapping=mapping)
            except HealthmeshError as exc:
                click.echo(f"{entry_id:6d}  open      {exc.message}")
                continue
            ok, detail = retry_entry(pipeline, entry_id, adapter)
            resolved += ok
            click.echo(f"{entry_id:6d}  {'resolved' if ok else 'open    '}  {detail}")
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    click.echo(f"{resolved} of {len(ids)} resolved")

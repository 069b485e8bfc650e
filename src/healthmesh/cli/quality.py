"""``healthmesh quality``: data-quality report of an institution's node (Kahn framework)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from healthmesh.ingest.quality import assess_store, render_table
from healthmesh.ingest.quality.report import dumps
from healthmesh.node.settings import NodeSettings


@click.group()
def group() -> None:
    """Data quality of the data a node holds."""


@group.command("report")
@click.option("--institution", required=True, help="Institution id (the node's).")
@click.option(
    "--db",
    default=None,
    help="SQLite path or postgresql:// URL of the node's store "
    "(default: the node's, from HEALTHMESH_NODE_* settings).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Node data directory (default ~/.healthmesh).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to write the JSON report (default quality-<institution>.json).",
)
@click.option(
    "--today",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Reference date for 'in the future' checks (default today).",
)
def report(
    institution: str,
    db: str | None,
    data_dir: Path | None,
    json_path: Path | None,
    today: dt.datetime | None,
) -> None:
    """Print completeness, conformance and plausibility per check, and write the JSON."""
    from healthmesh.fhir.store import FhirStore

    values: dict[str, object] = {"institution": institution}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if db is not None:
        values["db"] = db
    settings = NodeSettings(**values)  # type: ignore[arg-type]
    database = settings.database()
    if "://" not in database and not Path(database).exists():
        raise click.ClickException("no node database at that path")
    store = FhirStore(database)
    try:
        result = assess_store(store, institution, today.date() if today else None)
    finally:
        store.close()
    click.echo(render_table(result))
    target = json_path or Path(f"quality-{institution}.json")
    target.write_text(dumps(result) + "\n", encoding="utf-8")
    click.echo(f"JSON report: {target}")

"""``healthmesh node``: serve a node, register clients, import NDJSON, reindex."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from healthmesh.node.settings import NodeSettings


def _settings(data_dir: Path | None, db: str | None, **extra: object) -> NodeSettings:
    values: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if db is not None:
        values["db"] = db
    return NodeSettings(**values)  # type: ignore[arg-type]


data_dir_opt = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (env HEALTHMESH_NODE_DATA_DIR; default ~/.healthmesh).",
)
db_opt = click.option(
    "--db",
    default=None,
    help="SQLite path or postgresql:// URL (env HEALTHMESH_NODE_DB; "
    "default <data-dir>/node.sqlite).",
)


@click.group()
@click.pass_context
def group(ctx: click.Context) -> None:
    """Run and administer an institution node."""
    # default database for sub-commands that take --db (e.g. `clients`): the node's own
    ctx.obj = {"db": NodeSettings().database()}


def _mount_clients() -> None:
    """`healthmesh node clients add|list|show|disable|enable|rotate-secret|set-scopes|set-keys`."""
    from healthmesh.access.cli import clients

    group.add_command(clients, name="clients")


@group.command()
@data_dir_opt
@db_opt
@click.option("--host", default=None, help="Listen address (env HEALTHMESH_NODE_HOST; 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (env HEALTHMESH_NODE_PORT; 8080).")
@click.option(
    "--public-url", default=None, help="Base URL clients use (env HEALTHMESH_NODE_PUBLIC_URL)."
)
@click.option(
    "--institution", default=None, help="Institution id (env HEALTHMESH_NODE_INSTITUTION)."
)
def serve(
    data_dir: Path | None,
    db: str | None,
    host: str | None,
    port: int | None,
    public_url: str | None,
    institution: str | None,
) -> None:
    """Serve the node's FHIR R4 API at /fhir and its token endpoint at /auth/token."""
    import uvicorn

    from healthmesh.node.app import build_node

    settings = _settings(
        data_dir, db, host=host, port=port, public_url=public_url, institution=institution
    )
    node = build_node(settings)
    click.echo(f"FHIR base: {node.fhir_base}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        node.app, host=settings.host, port=settings.port, log_level="info", access_log=False
    )


@group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@data_dir_opt
@db_opt
def import_cmd(files: tuple[Path, ...], data_dir: Path | None, db: str | None) -> None:
    """Bulk-import NDJSON files (optionally .gz) or FHIR Bundles; bad lines are quarantined."""
    from healthmesh.fhir.bulk.importer import import_files
    from healthmesh.fhir.store import FhirStore

    settings = _settings(data_dir, db)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = FhirStore(settings.database())
    report = import_files(store, list(files), quarantine_dir=settings.data_dir / "quarantine")
    click.echo(report.summary())
    store.close()


@group.command()
@data_dir_opt
@db_opt
def reindex(data_dir: Path | None, db: str | None) -> None:
    """Rebuild every search index from the stored resources (after definitions change)."""
    from healthmesh.fhir.store import FhirStore
    from healthmesh.fhir.store.reindex import reindex_all

    settings = _settings(data_dir, db)
    store = FhirStore(settings.database())
    n = reindex_all(store)
    click.echo(f"reindexed {n} resources")
    store.close()


_mount_clients()


def _mount_federation_init() -> None:
    """`healthmesh node init --data-dir D --institution ID`: the node's federation keys."""
    from healthmesh.federation.cli import init

    group.add_command(init)


_mount_federation_init()


@group.command()
@click.option("--since", required=True, help="First day (YYYY-MM-DD).")
@click.option("--until", required=True, help="Day after the last (YYYY-MM-DD).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="CSV to write.")
@click.option(
    "--protect",
    "method",
    type=click.Choice(["suppress", "noise", "none"]),
    default="suppress",
    show_default=True,
    help="Small-count protection.",
)
@click.option(
    "--threshold",
    type=int,
    default=5,
    show_default=True,
    help="Cells below this are suppressed (suppress).",
)
@click.option(
    "--epsilon",
    type=float,
    default=1.0,
    show_default=True,
    help="Privacy parameter of the noise (noise).",
)
@data_dir_opt
@db_opt
@click.option(
    "--institution", default=None, help="Institution id (env HEALTHMESH_NODE_INSTITUTION)."
)
def counts(
    since: str,
    until: str,
    out: Path,
    method: str,
    threshold: int,
    epsilon: float,
    data_dir: Path | None,
    db: str | None,
    institution: str | None,
) -> None:
    """Write protected syndromic and pharmacy daily counts (the only data that leaves)."""
    import csv
    import datetime as dt

    from healthmesh.fhir.store import FhirStore
    from healthmesh.node.signals import node_counts
    from healthmesh.surveillance.signals.protection import Protection

    settings = _settings(data_dir, db, institution=institution)
    store = FhirStore(settings.database())
    try:
        rows = node_counts(
            store,
            settings.institution,
            dt.date.fromisoformat(since),
            dt.date.fromisoformat(until),
            Protection(method, threshold=threshold, epsilon=epsilon),  # type: ignore[arg-type]
        )
    finally:
        store.close()
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["institution", "date", "district", "signal", "count"])
        for r in rows:
            writer.writerow(
                [
                    r.institution,
                    r.date.isoformat(),
                    r.district,
                    r.signal,
                    "" if r.count is None else r.count,
                ]
            )
    click.echo(f"wrote {len(rows)} cells to {out}")

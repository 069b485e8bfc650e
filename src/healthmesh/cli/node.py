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
def group() -> None:
    """Run and administer an institution node."""


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


@group.group()
def clients() -> None:
    """Register and manage API clients."""


@clients.command("add")
@click.argument("name")
@click.option(
    "--scopes", required=True, help='SMART scopes, e.g. "system/Patient.rs system/Observation.rs".'
)
@click.option(
    "--jwks",
    "jwks_file",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="JWKS file with the client's public keys: registers a private_key_jwt client.",
)
@data_dir_opt
@db_opt
def clients_add(
    name: str, scopes: str, jwks_file: Path | None, data_dir: Path | None, db: str | None
) -> None:
    """Register a client and print its credentials (shown once)."""
    import json

    from healthmesh.access.clients import ClientRegistry
    from healthmesh.db import make_engine

    settings = _settings(data_dir, db)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = ClientRegistry(make_engine(settings.database()))
    if jwks_file is not None:
        creds = registry.add(
            name, scopes, method="private_key_jwt", jwks=json.loads(jwks_file.read_text())
        )
    else:
        creds = registry.add(name, scopes)
    click.echo(f"client_id:     {creds.client_id}")
    if creds.client_secret:
        click.echo(f"client_secret: {creds.client_secret}")
        click.echo("(the secret is shown once; it is stored only as a hash)")


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

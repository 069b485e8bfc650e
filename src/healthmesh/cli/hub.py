"""``healthmesh hub``: serve the hub; operate its institutions, researcher clients and studies.

Operator commands work on the hub's database directly (``--db`` / ``--data-dir``, like
``healthmesh node``); each command only parses arguments and calls the domain.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from healthmesh.errors import HealthmeshError
from healthmesh.hub.settings import HubSettings

F = TypeVar("F", bound=Callable[..., Any])


def _settings(data_dir: Path | None, db: str | None, **extra: object) -> HubSettings:
    values: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if db is not None:
        values["db"] = db
    return HubSettings(**values)  # type: ignore[arg-type]


def _handled(fn: F) -> F:
    """Domain errors become clean CLI errors (exit 1, public message only)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HealthmeshError as exc:
            raise click.ClickException(exc.message) from None

    return wrapper  # type: ignore[return-value]


def _db_options(fn: F) -> F:
    fn = click.option(
        "--db",
        default=None,
        help="SQLite path or postgresql:// URL (env HEALTHMESH_HUB_DB; default "
        "<data-dir>/hub.sqlite).",
    )(fn)
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Hub data directory (env HEALTHMESH_HUB_DATA_DIR; default ~/.healthmesh-hub).",
    )(fn)


def _engine(data_dir: Path | None, db: str | None) -> Any:
    from healthmesh.db import make_engine

    return make_engine(_settings(data_dir, db).database())


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


@click.group()
def group() -> None:
    """Run and operate the hub."""


@group.command()
@_db_options
@click.option("--host", default=None, help="Listen address (env HEALTHMESH_HUB_HOST; 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (env HEALTHMESH_HUB_PORT; 8000).")
@click.option("--public-url", default=None, help="Base URL (env HEALTHMESH_HUB_PUBLIC_URL).")
@_handled
def serve(
    data_dir: Path | None,
    db: str | None,
    host: str | None,
    port: int | None,
    public_url: str | None,
) -> None:
    """Serve the hub: federation endpoint, researcher API, token endpoint, ledger."""
    import uvicorn

    from healthmesh.hub.app import build_hub

    settings = _settings(data_dir, db, host=host, port=port, public_url=public_url)
    hub = build_hub(settings)
    click.echo(f"hub: {settings.base_url()}  (federation key id {hub.identity.key_id})")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        uvicorn.run(
            hub.app, host=settings.host, port=settings.port, log_level="info", access_log=False
        )
    finally:
        hub.close()


# -- institutions ---------------------------------------------------------------------------
@group.group()
def institutions() -> None:
    """Institutions registered at the hub (approve, reject, revoke)."""


def _registry(data_dir: Path | None, db: str | None) -> Any:
    from healthmesh.federation.registry import SqlRegistry

    return SqlRegistry(_engine(data_dir, db))


@institutions.command("list")
@_db_options
@click.option("--status", type=click.Choice(["pending", "approved", "rejected", "revoked"]))
@_handled
def institutions_list(data_dir: Path | None, db: str | None, status: str | None) -> None:
    """List institutions with their status and key ids."""
    for inst in _registry(data_dir, db).institutions(status):
        keys = ",".join(k.record.key_id for k in inst.keys)
        click.echo(
            f"{inst.institution}\t{inst.status}\t{inst.metadata.kind}\t{inst.metadata.name}\t{keys}"
        )


@institutions.command("approve")
@click.argument("institution")
@_db_options
@click.option("--operator", default="operator", show_default=True)
@_handled
def institutions_approve(
    institution: str, data_dir: Path | None, db: str | None, operator: str
) -> None:
    """Approve a pending registration (compare its key id with the institution first)."""
    inst = _registry(data_dir, db).approve(institution, operator)
    click.echo(f"{inst.institution}: {inst.status}")


@institutions.command("reject")
@click.argument("institution")
@click.option("--reason", required=True)
@_db_options
@click.option("--operator", default="operator", show_default=True)
@_handled
def institutions_reject(
    institution: str, reason: str, data_dir: Path | None, db: str | None, operator: str
) -> None:
    """Reject a pending registration."""
    inst = _registry(data_dir, db).reject(institution, operator, reason)
    click.echo(f"{inst.institution}: {inst.status}")


@institutions.command("revoke")
@click.argument("institution")
@_db_options
@click.option("--key-id", default=None, help="Revoke only this key (default: the institution).")
@click.option("--operator", default="operator", show_default=True)
@_handled
def institutions_revoke(
    institution: str, data_dir: Path | None, db: str | None, key_id: str | None, operator: str
) -> None:
    """Revoke an institution (all its keys) or one of its keys."""
    reg = _registry(data_dir, db)
    if key_id:
        inst = reg.revoke(operator=operator, key_id=key_id)
    else:
        inst = reg.revoke(operator=operator, institution=institution)
    click.echo(f"{inst.institution}: {inst.status}")


# -- researcher clients ---------------------------------------------------------------------
@group.group()
def clients() -> None:
    """Researcher and operator OAuth2 clients (client credentials)."""


@clients.command("add")
@click.argument("name")
@_db_options
@click.option("--admin", is_flag=True, help="An operator client (system/Institution.cruds too).")
@click.option("--scopes", default=None, help="Scopes instead of the researcher default.")
@_handled
def clients_add(
    name: str, data_dir: Path | None, db: str | None, admin: bool, scopes: str | None
) -> None:
    """Register a client; prints its id and secret (shown once)."""
    from healthmesh.access.clients import ClientRegistry
    from healthmesh.hub.api import HUB_ADMIN, RESEARCHER_SCOPES

    granted = scopes or (RESEARCHER_SCOPES + (f" {HUB_ADMIN}" if admin else ""))
    creds = ClientRegistry(_engine(data_dir, db)).add(name, granted)
    click.echo(f"client_id:     {creds.client_id}")
    click.echo(f"client_secret: {creds.client_secret}")
    click.echo(f"scopes:        {granted}")


@clients.command("list")
@_db_options
@_handled
def clients_list(data_dir: Path | None, db: str | None) -> None:
    """List registered clients."""
    from healthmesh.access.clients import ClientRegistry

    for rec in ClientRegistry(_engine(data_dir, db)).list():
        state = "enabled" if rec.enabled else "disabled"
        click.echo(f"{rec.client_id}\t{rec.name}\t{state}\t{rec.scopes}")


# -- studies --------------------------------------------------------------------------------
@group.group()
def studies() -> None:
    """Studies submitted at the hub, their decisions and results."""


def _studies(data_dir: Path | None, db: str | None) -> Any:
    from healthmesh.hub.studies import StudyStore

    return StudyStore(_engine(data_dir, db))


@studies.command("list")
@_db_options
@_handled
def studies_list(data_dir: Path | None, db: str | None) -> None:
    """Every study (newest first)."""
    for s in _studies(data_dir, db).list():
        click.echo(f"{s['id']}\t{s['created']}\t{s['researcher']}\t{s['title']}")


@studies.command("show")
@click.argument("study_id")
@_db_options
@_handled
def studies_show(study_id: str, data_dir: Path | None, db: str | None) -> None:
    """A study with each institution's decision."""
    _echo(_studies(data_dir, db).get(study_id).as_dict())


@studies.command("results")
@click.argument("study_id")
@_db_options
@_handled
def studies_results(study_id: str, data_dir: Path | None, db: str | None) -> None:
    """The runs of a study's computations and their results."""
    from healthmesh.hub.results import ResultStore

    engine = _engine(data_dir, db)
    _studies(data_dir, db).get(study_id)
    _echo([r.as_dict() for r in ResultStore(engine).for_study(study_id)])


# -- models ---------------------------------------------------------------------------------
@group.group()
def models() -> None:
    """Who may read trained models: node clients' institutions and explicit shares."""


@models.command("bind")
@click.argument("client_id")
@click.argument("institution")
@_db_options
@_handled
def models_bind(client_id: str, institution: str, data_dir: Path | None, db: str | None) -> None:
    """Let a node's client (scope system/Model.rs) read models as INSTITUTION."""
    from healthmesh.hub.model_access import ModelAccess

    ModelAccess(_engine(data_dir, db)).bind_client(client_id, institution)
    click.echo(f"{client_id}: reads the models {institution} trained or was given")


@models.command("share")
@click.argument("name")
@click.argument("version", type=click.IntRange(1))
@click.argument("institution")
@_db_options
@_handled
def models_share(
    name: str, version: int, institution: str, data_dir: Path | None, db: str | None
) -> None:
    """Share one model version with an institution that did not train it."""
    from healthmesh.hub.model_access import ModelAccess

    ModelAccess(_engine(data_dir, db)).share(name, version, institution)
    click.echo(f"{name} v{version}: shared with {institution}")

"""``clients`` command group: register and manage a node's OAuth clients.

Mounted by the node CLI as ``healthmesh node clients …``; each command only parses its
arguments and calls :class:`~healthmesh.access.clients.ClientRegistry`. The database is
``--db`` (or ``HEALTHMESH_DB``), else ``ctx.obj["db"]`` set by the parent group.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from healthmesh.access.clients import AUTH_METHODS, ClientRecord, ClientRegistry
from healthmesh.db import make_engine
from healthmesh.errors import HealthmeshError

__all__ = ["clients"]

F = TypeVar("F", bound=Callable[..., Any])


def _registry(ctx: click.Context) -> ClientRegistry:
    db = ctx.params.get("db") or (ctx.parent.params.get("db") if ctx.parent else None)
    if db is None and isinstance(ctx.obj, dict):
        db = ctx.obj.get("db")
    if not db:
        raise click.UsageError("give --db (a SQLite path or postgresql:// URL) or HEALTHMESH_DB")
    return ClientRegistry(make_engine(str(db)))


def _handled(fn: F) -> F:
    """Turn domain errors into clean CLI errors (exit 1, public message only)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HealthmeshError as exc:
            raise click.ClickException(exc.message) from None

    return wrapper  # type: ignore[return-value]


def _as_dict(rec: ClientRecord) -> dict[str, Any]:
    return {
        "client_id": rec.client_id,
        "name": rec.name,
        "scopes": str(rec.scopes),
        "method": rec.method,
        "enabled": rec.enabled,
        "jwks_url": rec.jwks_url,
        "kids": [k.get("kid") for k in (rec.jwks or {}).get("keys", [])],
        "created_at": rec.created_at.isoformat(),
    }


def _load_jwks(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise click.BadParameter("cannot read a JSON JWKS from that file") from exc
    return data if isinstance(data, dict) else {"keys": data}


@click.group("clients")
@click.option("--db", envvar="HEALTHMESH_DB", help="SQLite path or postgresql:// URL.")
def clients(db: str | None) -> None:
    """Register and manage OAuth clients of this node."""


@clients.command("add")
@click.argument("name")
@click.option("--scopes", required=True, help='Ceiling of grants, e.g. "system/*.rs".')
@click.option("--method", type=click.Choice(AUTH_METHODS), default="client_secret_basic")
@click.option("--jwks", "jwks_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--jwks-url", help="https URL where the client publishes its JWKS.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_context
@_handled
def add(
    ctx: click.Context,
    name: str,
    scopes: str,
    method: str,
    jwks_file: Path | None,
    jwks_url: str | None,
    as_json: bool,
) -> None:
    """Register client NAME and print its credentials (the secret is shown only now)."""
    if jwks_file is not None or jwks_url is not None:
        method = "private_key_jwt"
    creds = _registry(ctx).add(
        name, scopes, method=method, jwks=_load_jwks(jwks_file), jwks_url=jwks_url
    )
    if as_json:
        out = {"client_id": creds.client_id, "client_secret": creds.client_secret}
        click.echo(json.dumps(out))
        return
    click.echo(f"client_id:     {creds.client_id}")
    if creds.client_secret:
        click.echo(f"client_secret: {creds.client_secret}")
        click.echo("Store the secret now: it is kept only as a hash and cannot be shown again.")


@clients.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@_handled
def list_clients(ctx: click.Context, as_json: bool) -> None:
    """List registered clients (never their secrets)."""
    rows = [_as_dict(r) for r in _registry(ctx).list()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        state = "enabled" if r["enabled"] else "DISABLED"
        click.echo(f"{r['client_id']}  {r['name']}  {r['method']}  {state}  {r['scopes']}")


@clients.command("show")
@click.argument("client_id")
@click.pass_context
@_handled
def show(ctx: click.Context, client_id: str) -> None:
    """Show one client as JSON."""
    click.echo(json.dumps(_as_dict(_registry(ctx).get(client_id)), indent=2))


@clients.command("disable")
@click.argument("client_id")
@click.pass_context
@_handled
def disable(ctx: click.Context, client_id: str) -> None:
    """Refuse tokens to CLIENT_ID from now on."""
    _registry(ctx).disable(client_id)
    click.echo(f"disabled {client_id}")


@clients.command("enable")
@click.argument("client_id")
@click.pass_context
@_handled
def enable(ctx: click.Context, client_id: str) -> None:
    """Allow a disabled client again."""
    _registry(ctx).enable(client_id)
    click.echo(f"enabled {client_id}")


@clients.command("rotate-secret")
@click.argument("client_id")
@click.pass_context
@_handled
def rotate_secret(ctx: click.Context, client_id: str) -> None:
    """Issue a new secret (the old one stops working) and print it once."""
    creds = _registry(ctx).rotate_secret(client_id)
    click.echo(f"client_secret: {creds.client_secret}")


@clients.command("set-scopes")
@click.argument("client_id")
@click.option("--scopes", required=True)
@click.pass_context
@_handled
def set_scopes(ctx: click.Context, client_id: str, scopes: str) -> None:
    """Replace the scopes a client may be granted."""
    _registry(ctx).set_scopes(client_id, scopes)
    click.echo(f"scopes of {client_id}: {_registry(ctx).get(client_id).scopes}")


@clients.command("set-keys")
@click.argument("client_id")
@click.option("--jwks", "jwks_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--jwks-url")
@click.pass_context
@_handled
def set_keys(
    ctx: click.Context, client_id: str, jwks_file: Path | None, jwks_url: str | None
) -> None:
    """Replace the public keys of a private_key_jwt client."""
    _registry(ctx).set_keys(client_id, jwks=_load_jwks(jwks_file), jwks_url=jwks_url)
    click.echo(f"keys of {client_id} replaced")

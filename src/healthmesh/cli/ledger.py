"""``healthmesh ledger``: keys, the hub's ledger server, proofs and offline verification."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from healthmesh.errors import HealthmeshError, InvalidInput
from healthmesh.ledger.bundle import (
    BUNDLE_FORMAT,
    EXPORT_FORMAT,
    Trust,
    make_bundle,
    make_export,
    verify_bundle,
    verify_export,
)
from healthmesh.ledger.cosign import CosignatureVerifier
from healthmesh.ledger.keys import KINDS, generate_key, load_signer, save_key
from healthmesh.ledger.note import ed25519_verifier_from_vkey
from healthmesh.ledger.service import LedgerService


def _emit(doc: dict[str, Any], out: str | None) -> None:
    text = json.dumps(doc, ensure_ascii=False, indent=2) + "\n"
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


def _vkey_arg(value: str) -> str:
    path = Path(value)
    return path.read_text().strip() if path.is_file() else value


@click.group("ledger")
def group() -> None:
    """Tamper-evident provenance ledger (RFC 9162 log, C2SP checkpoints and witnesses)."""


@group.command("keygen")
@click.option("--kind", type=click.Choice(KINDS), required=True, help="log, witness or request")
@click.option("--name", required=True, help="key name, e.g. hub.example.org/ledger")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="private key file")
def keygen(kind: str, name: str, out: str) -> None:
    """Create a key file (mode 0600) and print its public vkey."""
    key = generate_key(kind, name)
    save_key(out, kind, key)
    click.echo(key.vkey())


@group.command("register-key")
@click.option("--db", required=True, help="ledger database (SQLite path or PostgreSQL URL)")
@click.option("--log-key", required=True, type=click.Path(exists=True), help="hub log key file")
@click.option("--institution", required=True)
@click.option("--purpose", type=click.Choice(["request-signing", "witness"]), required=True)
@click.option("--vkey", required=True, help="public vkey text or a file holding it")
def register_key(db: str, log_key: str, institution: str, purpose: str, vkey: str) -> None:
    """Register an institution's public key (recorded in the ledger)."""
    svc = LedgerService.open(db, load_signer(log_key))
    try:
        index = svc.register_key(institution, purpose, _vkey_arg(vkey))
    finally:
        svc.close()
    click.echo(f"registered at ledger index {index}")


@group.command("serve")
@click.option("--db", required=True, help="ledger database (SQLite path or PostgreSQL URL)")
@click.option("--log-key", required=True, type=click.Path(exists=True))
@click.option("--quorum", default=0, show_default=True, help="witness cosignatures for finality")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8700, show_default=True)
def serve(db: str, log_key: str, quorum: int, host: str, port: int) -> None:
    """Serve the ledger API under /ledger (the hub normally mounts it itself)."""
    import uvicorn
    from fastapi import FastAPI

    from healthmesh.ledger.api import create_router

    svc = LedgerService.open(db, load_signer(log_key), quorum=quorum)
    app = FastAPI(title="healthmesh ledger")
    app.include_router(create_router(svc), prefix="/ledger")
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        svc.close()


@group.command("prove")
@click.option("--index", type=int, required=True, help="ledger index of the entry")
@click.option("--db", help="ledger database (run at the hub)")
@click.option("--log-key", type=click.Path(exists=True), help="hub log key file (with --db)")
@click.option("--url", help="hub base URL instead of --db, e.g. https://hub.example.org")
@click.option("--out", type=click.Path(dir_okay=False), help="write the proof here")
def prove(
    index: int, db: str | None, log_key: str | None, url: str | None, out: str | None
) -> None:
    """Print a self-contained inclusion proof (checkpoint, cosignatures, entry, path)."""
    if url:
        import httpx

        resp = httpx.get(url.rstrip("/") + "/ledger/proof/bundle", params={"index": index})
        if resp.status_code != 200:
            raise click.ClickException(f"hub answered {resp.status_code}")
        _emit(resp.json(), out)
        return
    if not (db and log_key):
        raise click.UsageError("give --url, or --db with --log-key")
    svc = LedgerService.open(db, load_signer(log_key))
    try:
        _emit(make_bundle(svc.log, index), out)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        svc.close()


@group.command("export")
@click.option("--db", required=True)
@click.option("--log-key", required=True, type=click.Path(exists=True))
@click.option("--out", type=click.Path(dir_okay=False))
def export(db: str, log_key: str, out: str | None) -> None:
    """Export the latest cosigned checkpoint with every entry it covers."""
    svc = LedgerService.open(db, load_signer(log_key))
    try:
        _emit(make_export(svc.log), out)
    finally:
        svc.close()


@group.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--log-key", required=True, help="the hub's log vkey (text or file)")
@click.option("--witness-key", "witness_keys", multiple=True, help="trusted witness vkey")
@click.option("--quorum", default=0, show_default=True, help="cosignatures required")
@click.option("--origin", help="expected log origin")
def verify(
    files: tuple[str, ...],
    log_key: str,
    witness_keys: tuple[str, ...],
    quorum: int,
    origin: str | None,
) -> None:
    """Verify proof bundles or log exports offline with public keys only.

    Exit status 0 when every file verifies, 1 otherwise.
    """
    try:
        trust = Trust(
            ed25519_verifier_from_vkey(_vkey_arg(log_key)),
            tuple(CosignatureVerifier.from_vkey(_vkey_arg(w)) for w in witness_keys),
            quorum,
            origin,
        )
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    failed = 0
    for name in files:
        try:
            doc = json.loads(Path(name).read_text(encoding="utf-8"))
            fmt = doc.get("format") if isinstance(doc, dict) else None
            if fmt == BUNDLE_FORMAT:
                res = verify_bundle(doc, trust)
                res.pop("entry", None)
            elif fmt == EXPORT_FORMAT:
                res = verify_export(doc, trust)
            else:
                raise InvalidInput("not a ledger proof or export")
            click.echo(f"OK   {name}: " + json.dumps(res, ensure_ascii=False))
        except (HealthmeshError, ValueError, KeyError, TypeError) as exc:
            failed += 1
            msg = exc.message if isinstance(exc, HealthmeshError) else "malformed document"
            click.echo(f"FAIL {name}: {msg}")
    sys.exit(1 if failed else 0)


@group.command("witness")
@click.option("--url", required=True, help="hub base URL")
@click.option("--institution", required=True, help="this node's institution id")
@click.option("--request-key", required=True, type=click.Path(exists=True))
@click.option("--witness-key", required=True, type=click.Path(exists=True))
@click.option("--log-key", "log_vkey", required=True, help="the hub's log vkey (text or file)")
@click.option("--state-db", required=True, help="where the witness keeps its last cosigned head")
@click.option("--origin", help="the log's origin (default: the log key's name)")
def witness(
    url: str,
    institution: str,
    request_key: str,
    witness_key: str,
    log_vkey: str,
    state_db: str,
    origin: str | None,
) -> None:
    """One witness round for a node: check the hub's latest checkpoint and cosign it."""
    from healthmesh.ledger.client import LedgerClient
    from healthmesh.ledger.keys import load_cosigner
    from healthmesh.ledger.store.witness_sql import SqlWitnessState
    from healthmesh.ledger.witness import Witness

    verifier = ed25519_verifier_from_vkey(_vkey_arg(log_vkey))
    state = SqlWitnessState(state_db)
    w = Witness(load_cosigner(witness_key), {origin or verifier.name: verifier}, state)
    client = LedgerClient(url, institution, load_signer(request_key, "request"))
    try:
        res = client.witness_round(w)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        client.http.close()
        state.close()
    click.echo("nothing new" if res is None else json.dumps(res))

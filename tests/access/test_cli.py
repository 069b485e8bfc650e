"""The ``clients`` command group, driven through click's CliRunner."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from healthmesh.access import ClientRegistry
from healthmesh.access.cli import clients
from healthmesh.db import make_engine


def _run(db, *args: str):
    return CliRunner().invoke(clients, ["--db", str(db), *args], catch_exceptions=False)


def test_add_list_disable_rotate(tmp_path) -> None:
    db = tmp_path / "node.db"
    out = _run(db, "add", "cdc", "--scopes", "system/*.rs")
    assert out.exit_code == 0, out.output
    lines = dict(line.split(":", 1) for line in out.output.splitlines() if ":" in line)
    client_id, secret = lines["client_id"].strip(), lines["client_secret"].strip()
    reg = ClientRegistry(make_engine(str(db)))
    assert reg.authenticate_secret(client_id, secret).name == "cdc"

    listing = _run(db, "list", "--json")
    rows = json.loads(listing.stdout)
    assert [r["name"] for r in rows] == ["cdc"]
    assert secret not in listing.output

    assert _run(db, "disable", client_id).exit_code == 0
    assert not reg.get(client_id).enabled
    assert _run(db, "enable", client_id).exit_code == 0
    rotated = _run(db, "rotate-secret", client_id).output.split(":", 1)[1].strip()
    assert reg.authenticate_secret(client_id, rotated)
    assert _run(db, "set-scopes", client_id, "--scopes", "system/Patient.r").exit_code == 0
    assert json.loads(_run(db, "show", client_id).stdout)["scopes"] == "system/Patient.r"


def test_private_key_client_and_errors(tmp_path, es384_key, rs384_key) -> None:
    db = tmp_path / "node.db"
    jwks = tmp_path / "client.jwks.json"
    jwks.write_text(json.dumps(es384_key.jwks))
    out = _run(db, "add", "bulk", "--scopes", "system/*.rs", "--jwks", str(jwks), "--json")
    assert out.exit_code == 0, out.output
    created = json.loads(out.stdout)
    assert created["client_secret"] is None
    shown = json.loads(_run(db, "show", created["client_id"]).stdout)
    assert (shown["method"], shown["kids"]) == ("private_key_jwt", [es384_key.kid])
    jwks.write_text(json.dumps(rs384_key.jwks))
    assert _run(db, "set-keys", created["client_id"], "--jwks", str(jwks)).exit_code == 0
    assert json.loads(_run(db, "show", created["client_id"]).stdout)["kids"] == [rs384_key.kid]

    bad = CliRunner().invoke(clients, ["--db", str(db), "add", "x", "--scopes", "patient/*.rs"])
    assert bad.exit_code == 1
    assert "system/" in bad.output
    missing = CliRunner().invoke(clients, ["--db", str(db), "show", "nope"])
    assert missing.exit_code == 1
    assert "no such client" in missing.output


def test_db_from_parent_context(tmp_path) -> None:
    @click.group()
    @click.pass_context
    def node(ctx: click.Context) -> None:
        ctx.obj = {"db": str(tmp_path / "parent.db")}

    node.add_command(clients)
    out = CliRunner().invoke(node, ["clients", "add", "a", "--scopes", "system/*.rs"])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "parent.db").exists()
    no_db = CliRunner(env={"HEALTHMESH_DB": ""}).invoke(clients, ["list"])
    assert no_db.exit_code == 2

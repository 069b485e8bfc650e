"""The ``clients`` command group, driven through click's CliRunner."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from healthmesh.access.cli import clients
from healthmesh.access.clients import ClientRegistry
from healthmesh.db import make_engine


def _run(db, *args: str):
    result = CliRunner().invoke(clients, ["--db", str(db), *args], catch_exceptions=False)
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result


def _json(db, *args: str):
    result = _run(db, *args)
    try:
        return json.loads(result.stdout)
    except ValueError:
        raise AssertionError((args, result.stdout, result.stderr)) from None


def test_add_list_disable_rotate(tmp_path) -> None:
    db = tmp_path / "node.db"
    out = _run(db, "add", "cdc", "--scopes", "system/*.rs")
    lines = dict(line.split(":", 1) for line in out.stdout.splitlines() if ":" in line)
    client_id, secret = lines["client_id"].strip(), lines["client_secret"].strip()
    reg = ClientRegistry(make_engine(str(db)))
    assert reg.authenticate_secret(client_id, secret).name == "cdc"

    assert [r["name"] for r in _json(db, "list", "--json")] == ["cdc"]
    assert secret not in _run(db, "list").stdout

    _run(db, "disable", client_id)
    assert not reg.get(client_id).enabled
    _run(db, "enable", client_id)
    rotated = _run(db, "rotate-secret", client_id).stdout.split(":", 1)[1].strip()
    assert reg.authenticate_secret(client_id, rotated)
    _run(db, "set-scopes", client_id, "--scopes", "system/Patient.r")
    assert _json(db, "show", client_id)["scopes"] == "system/Patient.r"


def test_private_key_client_and_errors(tmp_path, es384_key, rs384_key) -> None:
    db = tmp_path / "node.db"
    jwks = tmp_path / "client.jwks.json"
    jwks.write_text(json.dumps(es384_key.jwks))
    created = _json(db, "add", "bulk", "--scopes", "system/*.rs", "--jwks", str(jwks), "--json")
    assert created["client_secret"] is None
    shown = _json(db, "show", created["client_id"])
    assert (shown["method"], shown["kids"]) == ("private_key_jwt", [es384_key.kid])
    jwks.write_text(json.dumps(rs384_key.jwks))
    _run(db, "set-keys", created["client_id"], "--jwks", str(jwks))
    assert _json(db, "show", created["client_id"])["kids"] == [rs384_key.kid]

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

"""Institution identities: key files, public records, fingerprints and ``healthmesh node init``."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from healthmesh.errors import InvalidInput
from healthmesh.federation.cli import init
from healthmesh.federation.identity import (
    ENC_FILE,
    PUBLIC_FILE,
    SIGN_FILE,
    Identity,
    PublicRecord,
    identity_dir,
    load,
    load_or_create,
)


def test_load_or_create_persists_keys_readable_only_by_owner(tmp_path: Path) -> None:
    d = tmp_path / "keys"
    a = load_or_create(d, "hosp-a")
    for name in (SIGN_FILE, ENC_FILE):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
        assert (d / name).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_or_create(d, "hosp-a")
    assert again.public_record() == a.public_record()
    assert load(d).key_id == a.key_id
    assert PublicRecord.model_validate_json((d / PUBLIC_FILE).read_text()) == a.public_record()


def test_load_or_create_refusals(tmp_path: Path) -> None:
    load_or_create(tmp_path / "k", "hosp-a")
    with pytest.raises(InvalidInput, match="hosp-a"):
        load_or_create(tmp_path / "k", "hosp-b")
    (tmp_path / "k" / ENC_FILE).unlink()
    with pytest.raises(InvalidInput, match="incomplete"):
        load_or_create(tmp_path / "k", "hosp-a")
    with pytest.raises(InvalidInput):
        Identity.generate("bad id with spaces")
    (tmp_path / "j").mkdir()
    for f in (SIGN_FILE, ENC_FILE):
        (tmp_path / "j" / f).write_text("garbage")
    (tmp_path / "j" / "federation-identity.json").write_text(json.dumps({"institution": "x"}))
    with pytest.raises(InvalidInput, match="unreadable"):
        load_or_create(tmp_path / "j", "x")


def test_public_record_fingerprint_is_checked() -> None:
    rec = Identity.generate("hosp-a").public_record()
    other = Identity.generate("hosp-a").public_record()
    doc = rec.model_dump()
    assert len(rec.key_id) == 16 and rec.key_id != other.key_id
    assert PublicRecord.model_validate(json.loads(json.dumps(doc))) == rec
    with pytest.raises(ValidationError, match="key_id"):
        PublicRecord.model_validate(doc | {"enc_key": other.enc_key})
    with pytest.raises(ValidationError, match="32 bytes"):
        PublicRecord.model_validate(doc | {"sign_key": "AAAA"})
    with pytest.raises(ValidationError):
        PublicRecord.model_validate(doc | {"extra": 1})


def test_cli_init(tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(init, ["--data-dir", str(tmp_path), "--institution", "hosp-a"])
    assert r.exit_code == 0, r.output
    key_id = load(identity_dir(tmp_path)).key_id
    assert "created" in r.output and key_id in r.output
    r = runner.invoke(init, ["--data-dir", str(tmp_path), "--institution", "hosp-a"])
    assert r.exit_code == 0 and "existing" in r.output and key_id in r.output
    r = runner.invoke(init, ["--data-dir", str(tmp_path), "--institution", "hosp-b"])
    assert r.exit_code == 1 and "identity of hosp-a" in r.output


def test_mounted_under_healthmesh_node(tmp_path: Path) -> None:
    from healthmesh.cli import main

    r = CliRunner().invoke(
        main, ["node", "init", "--data-dir", str(tmp_path), "--institution", "cdc-1"]
    )
    assert r.exit_code == 0, r.output
    assert load(identity_dir(tmp_path)).institution == "cdc-1"

"""The hub's and the node's federation commands, on the databases of a persistent in-process
federation."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.federation.inprocess import InProcessFederation

from .data import resources, study


def _run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_hub_and_node_commands(tmp_path: Path) -> None:
    with InProcessFederation(["hosp-a", "hosp-b"], directory=tmp_path, auto_approve=()) as fed:
        fed.load("hosp-a", resources("hosp-a", 40, 1))
        fed.load("hosp-b", resources("hosp-b", 40, 2))
        st = fed.submit(study(fed.names))
    hub = ["--data-dir", str(tmp_path / "hub")]
    listed = _run("hub", "institutions", "list", *hub)
    assert "hosp-a\tapproved\thospital" in listed
    out = _run("hub", "clients", "add", "dr-zhang", *hub)
    assert "client_secret:" in out and "system/Study.c" in out
    assert st.study_id in _run("hub", "studies", "list", *hub)
    shown = json.loads(_run("hub", "studies", "show", st.study_id, *hub))
    assert {d["state"] for d in shown["decisions"]} == {"pending"}

    node = ["--data-dir", str(tmp_path / "hosp-a"), "--db", str(tmp_path / "hosp-a" / "node.sqlite")]
    pending = _run("node", "studies", "list", "--state", "pending", *node)
    assert st.study_id in pending and "model:glm" in pending
    approved = _run("node", "studies", "approve", st.study_id, "--computation", "n", *node)
    assert "approved n (recorded here)" in approved
    assert "no hub configured" in approved
    rejected = _run("node", "studies", "reject", st.study_id, "--reason", "no capacity", *node)
    assert "rejected" in rejected
    bad = CliRunner().invoke(main, ["node", "studies", "approve", "st-none", *node])
    assert bad.exit_code != 0 and "no such study" in bad.output

    assert _run("hub", "institutions", "revoke", "hosp-b", *hub).strip() == "hosp-b: revoked"
    assert json.loads(_run("hub", "studies", "results", st.study_id, *hub)) == []

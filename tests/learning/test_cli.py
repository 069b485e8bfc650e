"""``healthmesh learning train|models|card`` end to end (in-process engine, SecAgg+ on)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.learning.flamby import load_heart

from .helpers import FLAMBY, write_nodes


def test_train_models_card(tmp_path: Path) -> None:
    files = write_nodes(load_heart(FLAMBY)[:2], tmp_path)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"n_features": 13, "rounds": 2, "local_steps": 20, "lr": 0.01}))
    db = str(tmp_path / "hub.db")
    run = CliRunner()
    args = ["learning", "train", "--spec", str(spec), "--name", "heart", "--study", "s1",
            "--job", "j1", "--db", db] + [f"--node={k}={v}" for k, v in files.items()]
    res = run.invoke(main, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.output[res.output.index("{"):])
    assert out["version"] == 1 and out["digest"].startswith("sha256:")
    res = run.invoke(main, ["learning", "models", "--db", db])
    assert res.exit_code == 0 and "heart\tv1\tlogreg\taccuracy=" in res.output
    res = run.invoke(main, ["learning", "card", "--db", db, "heart"])
    assert res.exit_code == 0 and "# Model card: heart v1" in res.output
    res = run.invoke(main, ["learning", "card", "--db", db, "nope"])
    assert res.exit_code != 0 and "not found" in res.output
    bad = run.invoke(main, [*args[:-1], "--node=x=/nonexistent.npz"])
    assert bad.exit_code != 0 and "NAME=EXISTING_FILE" in bad.output

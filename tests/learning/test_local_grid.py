"""The in-process grid's worker processes: the clients of a stage run in separate processes
(messages cross as Flower protobuf, each node's state stays in its process), and the run gives
the same model as one node after another; dropouts and ClientApp failures behave as in-process;
bad configurations are refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict
from flwr.client import ClientApp
from flwr.supercore.task_identity import TaskIdentity

from healthmesh.errors import InvalidInput
from healthmesh.learning.apps import server_app
from healthmesh.learning.flamby import load_heart
from healthmesh.learning.local_grid import LocalGrid, run_local

from .helpers import FLAMBY, write_nodes

APP = "healthmesh.learning.apps:client_app"
SPEC = {"n_features": 13, "rounds": 2, "local_steps": 20, "lr": 0.01, "min_clients": 3,
        "secagg": True}

failing_app = ClientApp()


@failing_app.train()
def _fail(msg: Message, ctx: Context) -> Message:
    raise RuntimeError("patient 123 is broken")  # must not travel: only the type does


@pytest.fixture(scope="module")
def heart(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    splits = [s for s in load_heart(FLAMBY) if s.name != "va"]
    return write_nodes(splits, tmp_path_factory.mktemp("heart"))


def _run(files: dict[str, str], spec: dict[str, Any], out: Path, **kw: Any) -> dict[str, Any]:
    cfgs = [{"data": p, "institution": k} for k, p in files.items()]
    rc = {"spec": json.dumps(spec), "result-dir": str(out), "clients": len(cfgs)}
    run_local(server_app, APP, cfgs, rc, **kw)
    result: dict[str, Any] = json.loads((out / "result.json").read_text())
    return result


def _weights(out: Path) -> list[np.ndarray]:
    with np.load(out / "model.npz") as f:
        return [f[k] for k in sorted(f.files)]


def test_worker_processes_give_the_sequential_model(heart: dict[str, str],
                                                    tmp_path: Path) -> None:
    seq = _run(heart, SPEC, tmp_path / "seq")
    par = _run(heart, SPEC, tmp_path / "par", workers=2, processes=True)
    assert par["clients_per_round"] == seq["clients_per_round"] == [3, 3]
    for a, b in zip(_weights(tmp_path / "par"), _weights(tmp_path / "seq"), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)  # same seeds; stochastic quantisation
    assert par["per_institution"] == pytest.approx(seq["per_institution"], abs=0.02)


def test_worker_processes_tolerate_a_dropout(heart: dict[str, str], tmp_path: Path) -> None:
    # node 3 answers key set-up and key sharing, then drops before its masked update
    spec = {**SPEC, "rounds": 1, "min_clients": 2}
    res = _run(heart, spec, tmp_path / "drop", workers=2, processes=True, drop_after={3: 2})
    assert res["clients_per_round"] == [2]


def test_a_failing_client_app_answers_an_error_without_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for attr in ("_task_id", "_run_id", "_node_id"):  # as run_local sets them for the server
        monkeypatch.setattr(TaskIdentity, attr, 0 if attr == "_node_id" else 1)
    ref = f"{__name__}:failing_app"
    grid = LocalGrid(ref, [{}, {}], {}, workers=2, processes=True)
    try:
        msgs = [grid.create_message(RecordDict(), "train", n, "1") for n in (1, 2)]
        replies = list(grid.send_and_receive(msgs))
    finally:
        grid.close()
    assert sorted(r.metadata.src_node_id for r in replies) == [1, 2]
    assert all(r.has_error() and r.error.reason == "RuntimeError" for r in replies)


def test_bad_configurations_are_refused() -> None:
    from healthmesh.learning.apps import client_app

    with pytest.raises(InvalidInput, match="module:attribute"):
        LocalGrid(client_app, [{}], {}, workers=2, processes=True)
    with pytest.raises(InvalidInput, match="module:attribute"):
        LocalGrid("healthmesh.learning.apps", [{}], {}, processes=True)
    with pytest.raises(InvalidInput, match="not a Flower ClientApp"):
        LocalGrid("healthmesh.learning.apps:server_app", [{}], {}, processes=True)
    with pytest.raises(InvalidInput, match="at least 1"):
        LocalGrid(client_app, [{}], {}, workers=0)

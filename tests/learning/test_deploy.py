"""A real Flower deployment on localhost: a SuperLink and two SuperNodes as subprocesses
(offline: no telemetry, update check or dependency installation), ``flwr run`` submitting
healthmesh's apps, SecAgg+ on, 2 rounds. Slow: Flower 1.42 starts one ClientApp process per
message (SecAgg+ sends four per round), so one module-wide deployment serves the test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from healthmesh.learning.deploy import OFFLINE_ENV, Deployment
from healthmesh.learning.flamby import load_heart

from .helpers import FLAMBY, run_spec, write_nodes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    splits = [s for s in load_heart(FLAMBY) if s.name in ("cleveland", "hungarian")]
    return write_nodes(splits, tmp_path_factory.mktemp("nodes"))


@pytest.fixture(scope="module")
def deployment(nodes: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with Deployment({k: {"data": v} for k, v in nodes.items()},
                    workdir=tmp_path_factory.mktemp("flower")) as dep:
        yield dep


def test_deployment_trains_with_secagg(deployment: Deployment, nodes: dict[str, str],
                                       tmp_path: Path) -> None:
    spec = {"n_features": 13, "rounds": 2, "local_steps": 20, "lr": 0.01, "min_clients": 2,
            "secagg": True}
    res = deployment.run(json.dumps(spec), timeout=900)
    assert res["clients_per_round"] == [2, 2]
    assert set(res["per_institution"]) == {"cleveland", "hungarian"}
    # the same run in-process gives the same model: the deployment adds transport only
    local = run_spec(nodes, spec, tmp_path / "local")
    with np.load(res["model_path"]) as a, np.load(local["model_path"]) as b:
        for k in a.files:
            np.testing.assert_allclose(a[k], b[k], atol=1e-4)
    env = deployment.env
    assert all(env[k] == v for k, v in OFFLINE_ENV.items())

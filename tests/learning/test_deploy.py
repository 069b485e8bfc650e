"""A real Flower deployment on localhost: a SuperLink and two SuperNodes as subprocesses
(offline: no telemetry, update check or dependency installation), ``flwr run`` submitting
healthmesh's apps, SecAgg+ on, 2 rounds — over TLS with SuperNode authentication (the
default). Slow: Flower 1.42 starts one ClientApp process per message (SecAgg+ sends four per
round), so one module-wide deployment serves the tests."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from healthmesh.learning.deploy import OFFLINE_ENV, Deployment, SuperNode
from healthmesh.learning.flamby import load_heart
from healthmesh.learning.tls import HubCA, new_node_key

from .helpers import FLAMBY, run_spec, write_nodes

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    splits = [s for s in load_heart(FLAMBY) if s.name in ("cleveland", "hungarian")]
    return write_nodes(splits, tmp_path_factory.mktemp("nodes"))


@pytest.fixture(scope="module")
def deployment(nodes: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    # SuperNodes dial the Fleet-only proxy, as SuperNodes on other machines do
    with Deployment({k: {"data": v} for k, v in nodes.items()},
                    workdir=tmp_path_factory.mktemp("flower"), expose="127.0.0.1") as dep:
        yield dep


def _exits(node: SuperNode, within: float) -> int | None:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if node.proc is not None and node.proc.poll() is not None:
            return node.proc.returncode
        time.sleep(0.2)
    return None


def test_deployment_trains_with_secagg_over_tls(deployment: Deployment, nodes: dict[str, str],
                                                tmp_path: Path) -> None:
    link = deployment.link
    assert link is not None and link.tls is not None and not link.insecure
    # the SuperLink speaks TLS only, with a certificate from the CA the SuperNodes were given
    ctx = ssl.create_default_context(cafile=str(link.tls.ca_cert))
    with socket.create_connection(("127.0.0.1", link.port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    # SuperNodes reach the Fleet API through the proxy, which serves nothing else
    assert link.proxy is not None and link.address == f"127.0.0.1:{link.proxy.port}"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(link.tls.ca_cert))) as http:
        assert http.post(f"https://{link.address}/v1/control/list-runs").status_code == 404
        proto = {"content-type": "application/protobuf"}
        # forwarded: the SuperLink itself refuses a call without SuperNode authentication
        unsigned = http.post(f"https://{link.address}/v1/fleet/get-run", headers=proto)
        assert unsigned.status_code == 401
    config = (link._dir() / "flwr-home" / "config.toml").read_text()
    assert "root-certificates" in config and "insecure" not in config
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


def test_unregistered_or_unverified_supernodes_are_refused(
        deployment: Deployment, nodes: dict[str, str], tmp_path: Path) -> None:
    link = deployment.link
    assert link is not None
    before = {n["node-id"] for n in link.nodes()}
    assert len(before) == 2
    # a key the hub never registered: the SuperLink refuses it and the SuperNode exits
    intruder = deployment.add_supernode("intruder", nodes["cleveland"], register=False)
    assert _exits(intruder, 60) not in (None, 0)
    # a registered key, but the node trusts another CA: TLS fails, it never connects
    other_ca = HubCA.load_or_create(tmp_path / "other-ca")
    key = new_node_key(tmp_path)
    link.register_node(key.public_key, "misled")
    misled = SuperNode(link.address, "misled", nodes["cleveland"], tmp_path,
                       root_certificates=other_ca.cert_path, auth_key=key.private_path)
    try:
        misled.start()
        time.sleep(10)
        listed = {n["node-id"]: n for n in link.nodes()}
        online = {k for k, n in listed.items() if n.get("status") == "online"}
        assert online == before  # neither the intruder nor the misled node came online
    finally:
        misled.stop()
    log = (link._dir() / "logs" / "supernode-intruder.log").read_text()
    assert "Failed to activate SuperNode" in log

"""A training run as a study computation (``federated_learning``): validation at submission,
``join`` refusals at a node, and (slow) a real run through an in-process federation — hub
SuperLink, one SuperNode per approving node, SecAgg+ on — where a node that did not approve
refuses and opted-out patients are not trained on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from healthmesh.analytics.memory_data import ResourceData
from healthmesh.analytics.registry import BUILTINS
from healthmesh.analytics.sdk import Algorithm
from healthmesh.errors import DisclosureRisk, InvalidInput
from healthmesh.federation.inprocess import InProcessFederation
from healthmesh.hub.studies import builtin_algorithm
from healthmesh.learning import study as fl
from healthmesh.learning.registry import ModelRegistry, weights_digest
from healthmesh.learning.tls import HubCA, check_node_public_key
from healthmesh.privacy.budget import MemoryBudgetStore
from healthmesh.privacy.guard import Guard
from healthmesh.privacy.policy import DpSettings, PrivacyPolicy
from healthmesh.privacy.release_log import MemoryReleaseLog

from ..hub.data import VARIABLES, resources

VAR = {v["name"]: v for v in VARIABLES}
PARAMS: dict[str, Any] = {
    "cohort": {},
    "outcome": VAR["hypertension"],
    "covariates": [VAR["age"], VAR["sex"], VAR["bmi"]],
    "spec": {"rounds": 2, "local_steps": 10, "lr": 0.05, "optimizer": "sgd",
             "batch_size": 16},
}


@pytest.fixture(autouse=True)
def _no_supernode_left() -> Iterator[None]:
    yield
    leftover = fl.active()
    fl.stop_all()
    assert leftover == []


def test_registered_as_a_builtin() -> None:
    assert BUILTINS["federated_learning"] is fl.ALGORITHM
    assert set(fl.ALGORITHM.node_methods) == {"join", "start", "leave"}


def test_validate_accepts_a_good_run() -> None:
    fl.validate(PARAMS)
    fl.validate({**PARAMS, "spec": {"model": "mlp", "hidden": 4,
                                    "dp": {"epsilon": 1.0, "delta": 1e-5}}})


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"outcome": None}, "outcome"),
        ({"covariates": []}, "covariates"),
        ({"covariates": [VAR["hypertension"]]}, "covariates"),
        ({"spec": {"rounds": 0}}, "rounds"),
        ({"spec": {"n_features": 3}}, "n_features"),
        ({"spec": {"model": "cox"}}, "survival"),
        ({"spec": {"colour": "blue"}}, "colour"),
        ({"spec": "logreg"}, "spec"),
        ({"spec": {"dp": {"epsilon": -1, "delta": 1e-5}}}, "epsilon"),
        ({"test_fraction": 1.5}, "test_fraction"),
        ({"timeout": "soon"}, "timeout"),
        ({"model_name": 3}, "model_name"),
        ({"cohort": {"include": [{"kind": "nonsense"}]}}, "cohort"),
    ],
)
def test_validate_refuses_bad_params(change: dict[str, Any], where: str) -> None:
    params = {k: v for k, v in {**PARAMS, **change}.items() if v is not None}
    with pytest.raises(InvalidInput) as err:
        fl.validate(params)
    assert where in str(err.value.message) + str(getattr(err.value, "location", ""))


def test_submission_with_bad_params_is_refused_and_nothing_stored() -> None:
    with InProcessFederation(2) as fed:
        body = {"title": "t", "purpose": "p", "institutions": fed.names, "variables": VARIABLES,
                "computations": [{"name": "fl", "algorithm": "federated_learning",
                                  "params": {"outcome": "hypertension", "covariates": ["age"],
                                             "spec": {"rounds": -2}}}]}
        with pytest.raises(InvalidInput, match="rounds"):
            fed.submit(body)
        assert fed.hub.studies.list() == []


class _Ctx:
    def __init__(self, data: ResourceData, policy: PrivacyPolicy) -> None:
        self.node = "hosp-x"
        self.data = data
        self.guard = Guard(policy, researcher="r", study="s", task_id="t",
                           log=MemoryReleaseLog(), budget=MemoryBudgetStore())


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    return HubCA.load_or_create(tmp_path_factory.mktemp("ca")).cert_path.read_text()


_CA: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _ca(ca_pem: str) -> None:
    _CA["pem"] = ca_pem


def _join_args() -> dict[str, Any]:
    return {**PARAMS, "run_key": "job-test", "superlink": "127.0.0.1:1", "ca_cert": _CA["pem"]}


def test_join_refuses_a_small_cohort_and_starts_nothing() -> None:
    ctx = _Ctx(ResourceData(resources("x", 8, 1, refusals=0)), PrivacyPolicy(min_cell=10))
    with pytest.raises(DisclosureRisk, match="min-cell-size"):
        fl.node_join(ctx, _join_args())
    assert fl.active() == []


def test_join_without_dp_is_refused_where_the_node_requires_dp() -> None:
    policy = PrivacyPolicy(dp=DpSettings(epsilon=0.5, epsilon_cap=2.0))
    ctx = _Ctx(ResourceData(resources("x", 40, 1)), policy)
    with pytest.raises(DisclosureRisk, match="dp-required"):
        fl.node_join(ctx, _join_args())
    assert fl.active() == []


def test_join_with_dp_is_charged_to_the_node_budget_and_refused_past_it() -> None:
    """A DP run's (epsilon, delta) is charged at the node before anything starts; a run that
    would pass the node's cap is refused and starts nothing."""
    policy = PrivacyPolicy(dp=DpSettings(epsilon=0.5, epsilon_cap=2.0, delta_cap=5e-3))
    ctx = _Ctx(ResourceData(resources("x", 40, 1)), policy)
    spec = {**PARAMS["spec"], "dp": {"epsilon": 3.0, "delta": 1e-3}}
    with pytest.raises(DisclosureRisk, match="privacy-budget"):
        fl.node_join(ctx, {**_join_args(), "spec": spec})
    assert fl.active() == []
    assert ctx.guard._budget.spent("r", "s").epsilon == 0  # nothing charged


def test_join_needs_a_run_key_and_a_superlink() -> None:
    ctx = _Ctx(ResourceData(resources("x", 40, 1)), PrivacyPolicy())
    with pytest.raises(InvalidInput, match="run_key"):
        fl.node_join(ctx, {**_join_args(), "run_key": "../etc"})
    with pytest.raises(InvalidInput, match="superlink"):
        fl.node_join(ctx, {**_join_args(), "superlink": None})
    assert fl.node_leave(ctx, {"run_key": "job-test"}) == {"left": False}


def test_join_needs_the_superlink_ca_and_refuses_an_insecure_link(tmp_path: Any) -> None:
    ctx = _Ctx(ResourceData(resources("x", 40, 1)), PrivacyPolicy())
    args = {k: v for k, v in _join_args().items() if k != "ca_cert"}
    with pytest.raises(InvalidInput, match="ca_cert"):
        fl.node_join(ctx, args)
    server = HubCA.load_or_create(tmp_path / "ca").issue_server(tmp_path / "s", ["127.0.0.1"])
    with pytest.raises(InvalidInput, match="not a CA"):  # a leaf certificate is no trust root
        fl.node_join(ctx, {**args, "ca_cert": server.certfile.read_text()})
    with pytest.raises(InvalidInput, match="ca_cert"):
        fl.node_join(ctx, {**args, "ca_cert": "-----BEGIN CERTIFICATE-----\nxx"})
    # a hub asking for a plaintext link is refused unless the node was built for development
    with pytest.raises(DisclosureRisk, match="link-security"):
        fl.node_join(ctx, {**args, "insecure": True})
    assert fl.active() == []


def test_join_answers_a_fresh_public_key_and_starts_only_when_asked() -> None:
    """``join`` prepares the rows and a key pair per run (private key 0600, in the node's
    private directory) and starts nothing; ``start`` for a run the node never joined is
    refused; ``leave`` deletes everything."""
    ctx = _Ctx(ResourceData(resources("x", 40, 1)), PrivacyPolicy())
    first = fl.node_join(ctx, _join_args())
    assert check_node_public_key(first["public_key"]) == first["public_key"]
    assert set(first) == {"n", "features", "public_key"}
    assert fl.active() == [("hosp-x", "job-test")]
    entry = fl._SUPERNODES[("hosp-x", "job-test")]
    assert not entry.supernode.alive and not entry.started
    key = entry.supernode.auth_key
    assert key is not None and key.stat().st_mode & 0o777 == 0o600
    assert fl.node_join(ctx, _join_args()) == first  # a repeated join: same key
    other = fl.node_join(ctx, {**_join_args(), "run_key": "job-other"})
    assert other["public_key"] != first["public_key"]  # a fresh key per run
    with pytest.raises(InvalidInput, match="not joined"):
        fl.node_start(ctx, {"run_key": "job-never"})
    workdir = entry.workdir
    assert fl.node_leave(ctx, {"run_key": "job-test"}) == {"left": True}
    assert fl.node_leave(ctx, {"run_key": "job-other"}) == {"left": True}
    assert fl.active() == [] and not Path(workdir).exists()


# ---- slow: a real run through the hub ---------------------------------------------------------

SIZES = {"hosp-a": 60, "hosp-b": 50, "clinic-c": 40}
OPTED_OUT = {"hosp-a": 4, "hosp-b": 3, "clinic-c": 2}


def _orphan_serverapps() -> set[int]:
    """Flower ServerApp processes whose process group leader (a SuperLink) is gone."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if b"flwr-serverapp" not in (proc / "cmdline").read_bytes():
                continue
            pgid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[2])
        except (OSError, ValueError, IndexError):
            continue
        if not Path(f"/proc/{pgid}").exists():
            found.add(int(proc.name))
    return found


@pytest.mark.slow
def test_a_training_run_is_a_study_computation() -> None:
    engine = sa.create_engine("sqlite://")
    registry = ModelRegistry(engine)
    bound = fl.federated_learning(registry)

    def lookup(name: str) -> Algorithm:
        return bound if name == "federated_learning" else builtin_algorithm(name)

    with InProcessFederation(list(SIZES), job_timeout=120, algorithms=lookup) as fed:
        for seed, (name, n) in enumerate(SIZES.items()):
            fed.load(name, resources(name, n, seed, refusals=OPTED_OUT[name]))
        st = fed.submit({
            "title": "Hypertension risk model", "purpose": "Federated logistic regression.",
            "institutions": fed.names, "variables": VARIABLES,
            "computations": [
                {"name": "fl", "algorithm": "federated_learning", "params": {
                    "outcome": "hypertension", "covariates": ["age", "sex", "bmi"],
                    "spec": PARAMS["spec"], "model_name": "htn"}},
                {"name": "fl_long", "algorithm": "federated_learning", "params": {
                    "outcome": "hypertension", "covariates": ["age", "sex", "bmi"],
                    "spec": {**PARAMS["spec"], "rounds": 500}, "timeout": 10}},
            ],
        })
        fed.approve(st.study_id, ["hosp-a", "hosp-b"])
        # the hub claims clinic-c approved; clinic-c's own record says otherwise
        fed.hub.studies.record_decision(st.study_id, "clinic-c", "approved", computations=["fl"])
        rec = fed.run(st.study_id, "fl")
        # a run past its time limit: failed, and on the ledger as a job_failure (timeout)
        orphans = _orphan_serverapps()
        long = fed.run(st.study_id, "fl_long")
        # its ServerApp (which ignores SIGTERM) did not outlive the SuperLink
        assert _orphan_serverapps() - orphans == set()
        log = fed.hub.ledger.service.log
        entries = [json.loads(log.entry(i)) for i in range(log.size())]
    assert long.status == "failed" and long.result is None
    assert entries[-1]["type"] == "job_failure"
    assert entries[-1]["body"]["reason"] == "timeout"
    assert entries[-1]["body"]["institutions"] == ["hosp-a", "hosp-b"]
    assert fl.active() == []
    assert rec.status == "done", rec.error
    assert rec.refused == {"clinic-c": "not-approved"}
    assert sorted(rec.participants) == ["hosp-a", "hosp-b"]
    res = rec.result
    assert res is not None
    # n excludes the opted-out patients (the cohort is everyone; every variable is present)
    assert res["participants"] == {
        "hosp-a": {"n": SIZES["hosp-a"] - OPTED_OUT["hosp-a"]},
        "hosp-b": {"n": SIZES["hosp-b"] - OPTED_OUT["hosp-b"]},
    }
    assert res["clients_per_round"] == [2, 2]
    assert set(res["per_institution"]) == {"hosp-a", "hosp-b"}
    assert res["secagg"] is True and res["epsilon"] is None
    assert 0.0 <= res["metric"] <= 1.0
    weights = [np.asarray(w, dtype=np.float32) for w in res["model"]["weights"]]
    assert [w.shape for w in weights] == [(1, 3), (1,)]
    assert res["model"]["features"] == ["age", "sex_male", "bmi"]
    assert res["model"]["digest"] == weights_digest(weights)
    assert res["registered"] == {"name": "htn", "version": 1}
    model = registry.get("htn")
    assert model.digest == res["model"]["digest"]
    assert model.lineage["institutions"] == res["participants"]
    assert fl.active() == []


@pytest.mark.slow
def test_one_institution_alone_is_refused_and_its_supernode_stopped() -> None:
    from healthmesh.analytics.local import run_local

    nodes = {"big": ResourceData(resources("big", 40, 1)),
             "tiny": ResourceData(resources("tiny", 3, 2, refusals=0))}
    with pytest.raises(DisclosureRisk, match="min-institutions"):
        run_local(fl.ALGORITHM, PARAMS, nodes)
    assert fl.active() == []

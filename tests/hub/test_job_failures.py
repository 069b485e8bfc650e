"""A job that fails after its ``job_start`` (a training run that timed out, a Flower process
that died, a refusal, a defect) ends as a ``job_failure`` ledger entry: the institutions and a
reason code, never the error's text; nothing is released."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from healthmesh.analytics.sdk import Algorithm, HubContext, Params
from healthmesh.errors import DisclosureRisk
from healthmesh.federation.inprocess import InProcessFederation
from healthmesh.hub.studies import builtin_algorithm
from healthmesh.learning.deploy import DeploymentError, RunTimedOut
from healthmesh.learning.governance import ALGORITHM
from healthmesh.ledger.reasons import failure_reason

from .data import VARIABLES, resources

SECRET = "patient hosp-a-17 glucose 7.9"  # text that must never reach the ledger


def _federation(central: Callable[[HubContext, Params], dict[str, Any]]) -> InProcessFederation:
    failing = Algorithm(ALGORITHM, "a training run that fails", {}, central)

    def lookup(name: str) -> Algorithm:
        return failing if name == ALGORITHM else builtin_algorithm(name)

    return InProcessFederation(["hosp-a", "hosp-b"], algorithms=lookup)


def _run(fed: InProcessFederation) -> Any:
    st = fed.submit({"title": "t", "purpose": "p", "institutions": fed.names,
                     "variables": VARIABLES,
                     "computations": [{"name": "fl", "algorithm": ALGORITHM, "params": {}}]})
    fed.approve(st.study_id, fed.names, ["fl"])
    return st, lambda: fed.run(st.study_id, "fl")


def _entries(fed: InProcessFederation) -> list[dict[str, Any]]:
    log = fed.hub.ledger.service.log
    return [json.loads(log.entry(i)) for i in range(log.size())]


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RunTimedOut(f"run 1 did not finish within 10s ({SECRET})"), "timeout"),
        (DeploymentError(f"a Flower process exited during the run ({SECRET})"), "transient"),
        (DisclosureRisk(f"min-institutions: {SECRET}"), "min-institutions"),
    ],
)
def test_a_failed_run_is_recorded_with_its_reason(error: Exception, reason: str) -> None:
    def central(ctx: HubContext, params: Params) -> dict[str, Any]:
        raise error

    with _federation(central) as fed:
        st, run = _run(fed)
        rec = run()
        entries = _entries(fed)
    assert rec.status == "failed" and rec.result is None
    types = [e["type"] for e in entries]
    assert "job_result_release" not in types
    assert types[-2:] == ["job_start", "job_failure"]
    start, failure = entries[-2]["body"], entries[-1]["body"]
    assert failure == {"job_id": start["job_id"], "study_id": st.study_id,
                       "algorithm": ALGORITHM, "institutions": ["hosp-a", "hosp-b"],
                       "reason": reason}
    assert all(SECRET not in json.dumps(e) for e in entries)


def test_an_unexpected_error_still_ends_the_job_on_the_ledger() -> None:
    def central(ctx: HubContext, params: Params) -> dict[str, Any]:
        raise KeyError(SECRET)

    with _federation(central) as fed:
        st, run = _run(fed)
        with pytest.raises(KeyError):
            run()
        (rec,) = fed.results(st.study_id)
        entries = _entries(fed)
    assert rec.status == "failed" and rec.error == "computation failed"
    assert entries[-1]["type"] == "job_failure" and entries[-1]["body"]["reason"] == "error"
    assert all(SECRET not in json.dumps(e) for e in entries)


def test_a_result_after_every_institution_dropped_out_is_not_released() -> None:
    def central(ctx: HubContext, params: Params) -> dict[str, Any]:
        ctx.call("missing-method", {})  # every node fails it and is dropped
        return {"model": "trained on nobody"}

    with _federation(central) as fed:
        _, run = _run(fed)
        rec = run()
        entries = _entries(fed)
    assert rec.status == "failed" and rec.result is None
    assert entries[-1]["type"] == "job_failure"
    assert entries[-1]["body"]["reason"] == "no-institutions"
    assert entries[-1]["body"]["institutions"] == []


def test_reason_codes_never_carry_message_text() -> None:
    assert failure_reason(DisclosureRisk("min-cell-size: 3 patients")) == "min-cell-size"
    assert failure_reason(DisclosureRisk("Too few: 3")) == "security"
    assert failure_reason(RunTimedOut("x")) == "timeout"
    assert failure_reason(RuntimeError(SECRET)) == "error"


def _count_study(fed: InProcessFederation) -> Any:
    st = fed.submit({"title": "t", "purpose": "p", "institutions": fed.names,
                     "variables": VARIABLES,
                     "computations": [{"name": "n", "algorithm": "count", "params": {}}]})
    fed.approve(st.study_id, fed.names, ["n"])
    return st


def test_a_result_the_ledger_did_not_record_is_not_released(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with InProcessFederation(["hosp-a", "hosp-b"]) as fed:
        for name in fed.names:
            fed.load(name, resources(name, 12, seed=len(name)))
        st = _count_study(fed)

        def unavailable(*args: Any) -> int:
            raise OSError("ledger disk full")

        monkeypatch.setattr(fed.hub.ledger, "released", unavailable)
        rec = fed.run(st.study_id, "n")
        (stored,) = fed.results(st.study_id)
        entries = _entries(fed)
    assert rec.status == "failed" and rec.result is None
    assert rec.error == "the release could not be recorded"
    assert stored.result is None
    assert [e["type"] for e in entries[-2:]] == ["job_start", "job_failure"]


def test_a_job_the_ledger_did_not_record_does_not_run_and_is_not_left_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with InProcessFederation(["hosp-a", "hosp-b"]) as fed:
        st = _count_study(fed)

        def unavailable(*args: Any) -> int:
            raise OSError("ledger disk full")

        monkeypatch.setattr(fed.hub.ledger, "job_started", unavailable)
        with pytest.raises(OSError):
            fed.run(st.study_id, "n")
        (stored,) = fed.results(st.study_id)
        types = [e["type"] for e in _entries(fed)]
    assert stored.status == "failed" and stored.result is None
    assert stored.error == "the job could not be recorded"
    assert "job_start" not in types and "job_result_release" not in types

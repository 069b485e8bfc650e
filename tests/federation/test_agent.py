"""The node agent: decisions are the node's own, re-delivered tasks are answered from what was
stored (no second computation or budget charge), and an offline node catches up."""

from __future__ import annotations

import pytest

from healthmesh.errors import Forbidden
from healthmesh.federation.inprocess import InProcessFederation
from healthmesh.federation.transport import TransportError
from healthmesh.privacy.policy import DpSettings, PrivacyPolicy

from ..hub.data import resources, study


def _fed(**kw: object) -> InProcessFederation:
    fed = InProcessFederation(["hosp-a", "hosp-b"], catalog=False, **kw)  # type: ignore[arg-type]
    fed.load("hosp-a", resources("hosp-a", 60, 1))
    fed.load("hosp-b", resources("hosp-b", 60, 2))
    return fed


def test_redelivered_task_gets_the_stored_result_and_no_second_charge() -> None:
    policy = PrivacyPolicy(dp=DpSettings(epsilon=0.25, epsilon_cap=1.0))
    with _fed(policy=policy) as fed:
        st = fed.submit(study(fed.names))
        rec = fed.run(st.study_id, "n")
        assert rec.status == "done"
        node = fed.nodes["hosp-a"]
        spent = node.budget.spent(fed.researcher, st.study_id)
        assert spent.epsilon == pytest.approx(0.25)
        (queued,) = [q for q in fed.hub.queue.tasks(rec.job_id + ".r0") if q.task.node == "hosp-a"]
        first = node.studies.stored_result(queued.task.id)
        again = node.agent.handle(queued.task)  # delivered a second time
        assert again.model_dump_json() == first
        assert node.budget.spent(fed.researcher, st.study_id) == spent


def test_operator_decides_when_no_policy_applies() -> None:
    with _fed(auto_approve=()) as fed:
        st = fed.submit(study(fed.names))
        assert {d.state for d in fed.hub.studies.get(st.study_id).decisions.values()} == {
            "pending"
        }
        node = fed.nodes["hosp-a"]
        assert [s.study_id for s in node.studies.list("pending")] == [st.study_id]
        with pytest.raises(Forbidden, match="no institution has approved"):
            fed.run(st.study_id, "n")
        fed.approve(st.study_id, ["hosp-a"], ["n"])
        hub_view = fed.hub.studies.get(st.study_id).decisions
        assert hub_view["hosp-a"].state == "approved" and hub_view["hosp-b"].state == "pending"
        assert node.studies.get(st.study_id).decided_by == "operator"
        rec = fed.run(st.study_id, "n")
        assert rec.participants == ["hosp-a"] and rec.status == "done"


def test_offline_node_catches_up_and_a_silent_one_is_listed() -> None:
    with _fed(job_timeout=1.0) as fed:
        fed.offline.add("hosp-b")
        st = fed.submit(study(fed.names))
        assert fed.hub.studies.get(st.study_id).decisions["hosp-b"].state == "pending"
        fed.offline.clear()  # back after a while: the announcement waited in the queue
        fed.pump()
        assert fed.hub.studies.get(st.study_id).decisions["hosp-b"].state == "approved"
        assert fed.run(st.study_id, "n").participants == ["hosp-a", "hosp-b"]
        # a node that approved but is silent during a job is listed, the rest is released
        fed.offline.add("hosp-b")
        rec = fed.run(st.study_id, "table")
        assert rec.not_responded == ["hosp-b"] and rec.refused == {}
        assert rec.participants == ["hosp-a"] and rec.result is not None


class _Flaky:
    """A transport whose first publish fails as if the hub were unreachable."""

    def __init__(self, inner: object) -> None:
        self.inner, self.failed = inner, False

    def publish(self, kind: str, body: dict[str, object]) -> None:
        if not self.failed:
            self.failed = True
            raise TransportError("hub unreachable")
        self.inner.publish(kind, body)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_decision_that_could_not_be_published_is_published_on_redelivery() -> None:
    with _fed() as fed:
        fed.offline.add("hosp-b")
        st = fed.submit(study(fed.names))
        node = fed.nodes["hosp-b"]
        node.agent.transport = _Flaky(node.agent.transport)  # type: ignore[assignment]
        (queued,) = [
            q for q in fed.hub.queue.tasks("announce-" + st.study_id) if q.task.node == "hosp-b"
        ]
        task = queued.task
        with pytest.raises(TransportError):
            node.agent.handle(task)
        assert node.studies.stored_result(task.id) is None  # nothing stored: it comes again
        assert node.studies.get(st.study_id).state == "approved"  # decided by its policy
        assert fed.hub.studies.get(st.study_id).decisions["hosp-b"].state == "pending"
        node.agent.handle(task)
        assert fed.hub.studies.get(st.study_id).decisions["hosp-b"].state == "approved"

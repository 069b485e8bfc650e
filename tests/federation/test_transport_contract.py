"""One transport suite run in-process (hub state in memory, SQLite or PostgreSQL), through
TestClient and over a real uvicorn server: what a node can do with the hub."""

from __future__ import annotations

import datetime as dt
import threading
import time

import orjson
import pytest

from healthmesh.errors import Conflict, Forbidden, InvalidInput, NotFound
from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import Task, TaskResult
from healthmesh.federation.registry import sign_rotation
from healthmesh.federation.sealing import open_envelope, seal
from healthmesh.federation.transport import ForgedResponse

from .conftest import META, Fed


def _task(node: str = "hosp-a", job: str = "job-1", round_: int = 0) -> Task:
    return Task.new(
        job_id=job,
        node=node,
        kind="compute",
        issued_at=dt.datetime.now(dt.UTC),
        ttl_s=600,
        round_=round_,
        study_id="study-1",
        algorithm="count",
        method="count",
        args={"cohort": {"include": []}},
        researcher="dr-li",
    )


def test_hub_identity_is_pinned(fed: Fed) -> None:
    node = Identity.generate("hosp-a")
    assert fed.connect(node).hub_identity() == fed.hub.public_record()
    wrong = Identity.generate("hub").public_record()
    with pytest.raises(ForgedResponse):
        fed.connect(node, hub=wrong).register(node.public_record(), META)


def test_register_pending_then_approved(fed: Fed) -> None:
    node = Identity.generate("hosp-a")
    t = fed.connect(node)
    reg = t.register(node.public_record(), META)
    assert (reg.institution, reg.key_id, reg.status) == ("hosp-a", node.key_id, "pending")
    with pytest.raises(Forbidden, match="not approved"):
        t.poll()
    fed.registry.approve("hosp-a", "op")
    assert t.poll() == []
    assert t.register(node.public_record(), META).status == "approved"


def test_task_round_trip(fed: Fed) -> None:
    node, t = fed.approved_node()
    task = _task()
    assert fed.endpoint.enqueue(task)
    (got,) = t.poll(max_n=5)
    assert got == task
    env = seal(orjson.dumps({"n": 12}), t.hub_identity(), node, got.id)
    result = TaskResult(task_id=got.id, node="hosp-a", status="ok", sealed=env)
    assert t.submit(result) is True
    assert t.submit(result) is False  # re-delivered task answered with the same result
    (stored,) = fed.queue.results("job-1")
    assert stored == result
    assert stored.sealed is not None
    keys = fed.registry.active_keys("hosp-a")
    assert orjson.loads(open_envelope(stored.sealed, fed.hub, keys, task.id)) == {"n": 12}
    other = seal(orjson.dumps({"n": 13}), t.hub_identity(), node, got.id)
    with pytest.raises(Conflict):
        t.submit(TaskResult(task_id=got.id, node="hosp-a", status="ok", sealed=other))
    refused = TaskResult(task_id="e" * 64, node="hosp-a", status="refused", rule="min-cell-size")
    with pytest.raises(NotFound):
        t.submit(refused)


def test_unanswered_task_is_redelivered_after_its_lease(fed: Fed) -> None:
    _, t = fed.approved_node()
    fed.endpoint.enqueue(_task())
    assert len(t.poll()) == 1
    assert t.poll() == []
    time.sleep(0.6)  # the endpoint leases for 0.5 s
    assert len(t.poll()) == 1


def test_long_poll_returns_as_soon_as_a_task_exists(fed: Fed) -> None:
    _, t = fed.approved_node()
    start = time.monotonic()
    assert t.poll(wait_s=0.3) == []
    assert time.monotonic() - start >= 0.3
    timer = threading.Timer(0.2, lambda: fed.endpoint.enqueue(_task()))
    timer.start()
    start = time.monotonic()
    tasks = t.poll(wait_s=20)
    assert len(tasks) == 1 and time.monotonic() - start < 10
    # enqueued behind the endpoint's back (another hub worker): noticed by the poll interval
    threading.Timer(0.2, lambda: fed.queue.enqueue(_task(round_=1))).start()
    assert len(t.poll(wait_s=20)) == 1


def test_publish_reaches_the_hub_callback(fed: Fed) -> None:
    _, t = fed.approved_node()
    t.publish("catalog", {"resources": {"Patient": 120}, "名称": "第一医院"})
    assert fed.published == [
        ("hosp-a", "catalog", {"resources": {"Patient": 120}, "名称": "第一医院"})
    ]
    with pytest.raises(InvalidInput):
        t.publish("Bad Kind", {})


def test_rotation_over_the_transport(fed: Fed) -> None:
    old, t_old = fed.approved_node()
    new = Identity.generate("hosp-a")
    reg = t_old.rotate(new.public_record(), sign_rotation(old, new.public_record()))
    assert reg.key_id == new.key_id
    fed.endpoint.enqueue(_task())
    assert len(t_old.poll()) == 1  # in-flight requests of the old key still verify (overlap)
    fed.registry.revoke(operator="op", key_id=old.key_id)
    fed.endpoint.enqueue(_task(round_=1))
    assert len(fed.connect(new).poll()) == 1


def test_hub_errors_are_operation_outcomes(fed: Fed) -> None:
    node, t = fed.approved_node()
    path = "/federation/v1/results"
    from healthmesh.federation.signing import sign_request

    body = b'{"task_id": "nope"}'
    headers = sign_request(node, "POST", path, body)
    status, _, rb = t._send("POST", path, headers, body, 10.0)
    doc = orjson.loads(rb)
    assert status == 400 and doc["resourceType"] == "OperationOutcome"
    assert doc["issue"][0]["code"] == "invalid" and "task_id" in doc["issue"][0]["diagnostics"]
    status, _, rb = t._send("GET", "/federation/v1/nothing", {}, b"", 10.0)
    assert status == 404

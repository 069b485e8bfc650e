"""Issue 6 acceptance: every forged, replayed, stale, tampered or misdirected call is refused
with a clear error and leaves nothing behind — in-process, through TestClient and over a real
server."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
import pytest

from healthmesh.errors import Forbidden, HealthmeshError, InvalidInput, Unauthorized
from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import Task, TaskResult
from healthmesh.federation.sealing import _signed_bytes, seal
from healthmesh.federation.signing import sign_request
from healthmesh.federation.transport import ForgedResponse
from healthmesh.federation.transport._client import SignedClient

from .conftest import META, Fed


def _task(node: str = "hosp-a", job: str = "job-1") -> Task:
    return Task.new(
        job_id=job,
        node=node,
        kind="compute",
        issued_at=dt.datetime.now(dt.UTC),
        ttl_s=600,
        algorithm="count",
        method="count",
        args={},
    )


def _ok(t: SignedClient, node: Identity, task: Task) -> TaskResult:
    env = seal(b'{"n": 9}', t.hub_identity(), node, task.id)
    return TaskResult(task_id=task.id, node=node.institution, status="ok", sealed=env)


class Recorder:
    """Wraps a transport's carrier to keep the last request it sent (for replays)."""

    def __init__(self, t: SignedClient) -> None:
        self.t, self.inner, self.last = t, t._send, None
        t._send = self  # type: ignore[method-assign]

    def __call__(
        self, method: str, path: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Any:
        self.last = (method, path, dict(headers), body)
        return self.inner(method, path, headers, body, timeout_s)

    def send(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any]]:
        status, _, rb = self.inner(method, path, dict(headers), body, 10.0)
        return status, orjson.loads(rb)


def _nothing_stored(fed: Fed) -> None:
    assert fed.queue.results("job-1") == []
    assert fed.published == []
    assert all(q.state != "completed" for q in fed.queue.tasks("job-1"))


def _refused(exc: HealthmeshError, cls: type[HealthmeshError], words: str) -> None:
    assert isinstance(exc, cls), exc
    assert words in exc.message


def test_unregistered_node(fed: Fed) -> None:
    stranger = Identity.generate("hosp-x")
    t = fed.connect(stranger)
    fed.endpoint.enqueue(_task("hosp-x"))
    for call in (
        lambda: t.poll(),
        lambda: t.publish("catalog", {"a": 1}),
        lambda: t.submit(_ok(t, stranger, _task("hosp-x"))),
    ):
        with pytest.raises(Unauthorized) as info:
            call()
        _refused(info.value, Unauthorized, "not an active key")
    _nothing_stored(fed)
    assert fed.queue.tasks("job-1")[0].deliveries == 0


def test_pending_node(fed: Fed) -> None:
    node = Identity.generate("hosp-a")
    t = fed.connect(node)
    t.register(node.public_record(), META)
    task = _task()
    fed.endpoint.enqueue(task)
    for call in (
        lambda: t.poll(),
        lambda: t.publish("catalog", {"a": 1}),
        lambda: t.submit(_ok(t, node, task)),
    ):
        with pytest.raises(Forbidden, match="not approved"):
            call()
    _nothing_stored(fed)
    assert fed.queue.tasks("job-1")[0].deliveries == 0


def test_revoked_key_and_institution(fed: Fed) -> None:
    node, t = fed.approved_node()
    task = _task()
    fed.endpoint.enqueue(task)
    result = _ok(t, node, task)
    fed.registry.revoke(operator="op", key_id=node.key_id)
    with pytest.raises(Unauthorized, match="not an active key"):
        t.submit(result)
    with pytest.raises(Unauthorized):
        t.poll()
    _other, t2 = fed.approved_node("hosp-b")
    fed.registry.revoke(operator="op", institution="hosp-b")
    with pytest.raises(Unauthorized):
        t2.publish("catalog", {"a": 1})
    again = Identity.generate("hosp-b")
    with pytest.raises(Forbidden, match="revoked"):
        fed.connect(again).register(again.public_record(), META)
    with pytest.raises(Unauthorized, match="not an active key"):  # must prove the key it registers
        t2.register(again.public_record(), META)
    _nothing_stored(fed)


def test_replayed_request(fed: Fed) -> None:
    _node, t = fed.approved_node()
    rec = Recorder(t)
    t.publish("catalog", {"n": 1})
    assert len(fed.published) == 1
    status, doc = rec.send(*rec.last)  # type: ignore[misc]
    assert status == 401 and doc["issue"][0]["diagnostics"] == "request replayed"
    assert doc["issue"][0]["code"] == "login"
    assert len(fed.published) == 1


def test_request_outside_time_window(fed: Fed) -> None:
    node, _ = fed.approved_node()
    import time

    for skew in (-3600, 3600):
        late = fed.connect(node, clock=lambda s=skew: time.time() + s)
        with pytest.raises(Unauthorized, match="outside the accepted window"):
            late.publish("catalog", {"n": 1})
    assert fed.published == []


def test_tampered_body(fed: Fed) -> None:
    node, t = fed.approved_node()
    rec = Recorder(t)
    task = _task()
    fed.endpoint.enqueue(task)
    t.poll()
    path = "/federation/v1/publish"
    body = orjson.dumps({"kind": "catalog", "body": {"n": 1}})
    headers = sign_request(node, "POST", path, body)
    status, doc = rec.send(
        "POST", path, headers, orjson.dumps({"kind": "catalog", "body": {"n": 999}})
    )
    assert status == 401 and "does not verify" in doc["issue"][0]["diagnostics"]
    # the untouched request still goes through: the failed one did not burn its nonce
    status, _ = rec.send("POST", path, headers, body)
    assert status == 200 and fed.published == [("hosp-a", "catalog", {"n": 1})]


def _flip(b64: str) -> str:
    raw = bytearray(base64.b64decode(b64))
    raw[-1] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def test_tampered_or_forged_sealed_result(fed: Fed) -> None:
    node, t = fed.approved_node()
    task = _task()
    fed.endpoint.enqueue(task)
    t.poll()
    good = _ok(t, node, task)
    assert good.sealed is not None
    tampered = good.model_copy(
        update={
            "sealed": good.sealed.model_copy(update={"ciphertext": _flip(good.sealed.ciphertext)})
        }
    )
    with pytest.raises(InvalidInput, match="signature does not verify") as info:
        t.submit(tampered)
    assert info.value.code == "security"
    # re-signed by the node itself but with a broken ciphertext: the AEAD tag catches it
    env = good.sealed.model_copy(update={"ciphertext": _flip(good.sealed.ciphertext)})
    env = env.model_copy(
        update={"signature": base64.b64encode(node.sign(_signed_bytes(env))).decode()}
    )
    with pytest.raises(InvalidInput, match="integrity check"):
        t.submit(good.model_copy(update={"sealed": env}))
    # forged: sealed by someone holding another key in the node's name
    forger = Identity.generate("hosp-a")
    forged = TaskResult(
        task_id=task.id,
        node="hosp-a",
        status="ok",
        sealed=seal(b'{"n": 1}', t.hub_identity(), forger, task.id),
    )
    with pytest.raises(InvalidInput, match="key not valid"):
        t.submit(forged)
    _nothing_stored(fed)
    assert t.submit(good) is True  # the genuine result is still accepted afterwards


def test_result_from_another_node(fed: Fed) -> None:
    _a, _ta = fed.approved_node("hosp-a")
    b, tb = fed.approved_node("hosp-b")
    task = _task("hosp-a")
    fed.endpoint.enqueue(task)
    # B answers A's task under its own name ...
    with pytest.raises(Forbidden, match="task's node"):
        tb.submit(_ok(tb, b, task))
    # ... or in A's name (without A's key it cannot seal as A; with its own seal it names A)
    in_a_name = TaskResult(task_id=task.id, node="hosp-a", status="refused", rule="min-cell-size")
    with pytest.raises(Forbidden, match="other than the sender"):
        tb.submit(in_a_name)
    _nothing_stored(fed)
    assert tb.poll() == []  # and B is never handed A's task


def test_forged_or_tampered_response_detected(fed: Fed) -> None:
    _node, t = fed.approved_node()
    fed.endpoint.enqueue(_task())
    inner = t._send

    def tamper(*args: Any) -> Any:
        status, headers, body = inner(*args)
        return status, headers, body.replace(b"compute", b"computx")

    t._send = tamper  # type: ignore[method-assign]
    with pytest.raises(ForgedResponse, match="does not verify"):
        t.poll()

    def forge(
        method: str, path: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> Any:
        fake = Identity.generate("hub")
        resp_body = b'{"tasks": []}'
        from healthmesh.federation.signing import H_NONCE, sign_response

        return 200, sign_response(fake, 200, headers[H_NONCE], resp_body), resp_body

    t._send = forge  # type: ignore[method-assign]
    with pytest.raises(ForgedResponse, match="not signed by the hub"):
        t.poll()

"""The hub side of the node protocol, independent of HTTP: one ``handle(method, path, headers,
body)`` that authenticates, dispatches and answers with signed bytes.

Both transports end here — :class:`~.inprocess.InProcessTransport` calls :meth:`HubEndpoint.handle`
directly and :mod:`healthmesh.federation.hub_routes` forwards HTTP requests to it — so the
in-process twin exercises exactly the authentication the network path does.

==========================  ======================================================  =========
``GET  /hub-identity``      the hub's :class:`PublicRecord`                         public
``POST /register``          :class:`RegisterRequest` → :class:`Registration`        self-signed
``POST /rotate``            ``{"record", "signature"}`` → :class:`Registration`     signed
``POST /poll``              :class:`PollRequest` → ``{"tasks": [Task, ...]}``       approved
``POST /results``           :class:`TaskResult` → :class:`SubmitResponse`           approved
``POST /publish``           :class:`PublishRequest` → ``{"accepted": true}``        approved
==========================  ======================================================  =========

(paths under ``/federation/v1``). Errors are FHIR ``OperationOutcome`` JSON with the error's
status; every answer, errors included, is signed by the hub over the request's nonce.
A submitted result is checked before it is stored: the task exists, belongs to the sender,
and an ``ok`` result's envelope verifies (sender signature, task binding, AEAD tag).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.to_thread
import orjson
from pydantic import BaseModel

from healthmesh.errors import (
    Forbidden,
    HealthmeshError,
    NotFound,
    NotSupported,
    PayloadTooLarge,
)
from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.messages import (
    PollRequest,
    PublishRequest,
    RegisterRequest,
    SubmitResponse,
    Task,
    TaskResult,
    parse_model,
)
from healthmesh.federation.queue.base import TaskQueue
from healthmesh.federation.registry.base import InstitutionRegistry
from healthmesh.federation.sealing import open_envelope
from healthmesh.federation.signing import (
    H_INSTITUTION,
    H_NONCE,
    NONCE_PATTERN,
    Authenticated,
    NonceStore,
    RequestVerifier,
    header,
    sign_response,
)
from healthmesh.federation.transport.base import PREFIX

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024 * 1024
OnPublish = Callable[[str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class EndpointResponse:
    """A signed answer: status, JSON body bytes and the signature headers."""

    status: int
    body: bytes
    headers: dict[str, str]


class RotateRequest(BaseModel):
    """Body of ``POST /federation/v1/rotate``."""

    record: PublicRecord
    signature: str


def _encode(result: Any) -> bytes:
    if isinstance(result, BaseModel):
        return result.model_dump_json().encode()
    return orjson.dumps(result)


def _tasks_doc(tasks: list[Task]) -> dict[str, Any]:
    return {"tasks": [t.model_dump(mode="json") for t in tasks]}


def _failure(exc: Exception) -> tuple[int, bytes]:
    if isinstance(exc, HealthmeshError):
        return exc.status, _outcome(exc)
    # never leak internals; the hub's log has the trace
    log.error("federation endpoint failed", exc_info=exc)
    return 500, _outcome(HealthmeshError("internal error at the hub"))


def _outcome(exc: HealthmeshError) -> bytes:
    issue: dict[str, Any] = {"severity": "error", "code": exc.code, "diagnostics": exc.message}
    return orjson.dumps({"resourceType": "OperationOutcome", "issue": [issue]})


class HubEndpoint:
    """The hub's federation service: registry, task queue, request authentication.

    ``on_publish(institution, kind, body)`` receives what approved nodes publish. The hub
    enqueues tasks with :meth:`enqueue` (wakes long polls at once) or straight into the queue
    (long polls then notice within ``poll_interval_s``).
    """

    def __init__(
        self,
        identity: Identity,
        queue: TaskQueue,
        registry: InstitutionRegistry,
        nonces: NonceStore,
        *,
        on_publish: OnPublish | None = None,
        lease_s: float = 60.0,
        window_s: int = 300,
        poll_interval_s: float = 0.25,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity
        self.record = identity.public_record()
        self.queue = queue
        self.registry = registry
        self.nonces = nonces
        self.on_publish = on_publish
        self.lease_s = lease_s
        self.window_s = window_s
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self._wake = threading.Condition()
        self._routes: dict[tuple[str, str], Callable[[str, Mapping[str, str], bytes], Any]] = {
            ("GET", "/hub-identity"): self._hub_identity,
            ("POST", "/register"): self._register,
            ("POST", "/rotate"): self._rotate,
            ("POST", "/poll"): self._poll,
            ("POST", "/results"): self._results,
            ("POST", "/publish"): self._publish,
        }

    def enqueue(self, task: Task) -> bool:
        """Queue a task and wake the long polls waiting for work."""
        return self.enqueue_many([task]) == 1

    def enqueue_many(self, tasks: Sequence[Task]) -> int:
        """Queue several tasks in one go (a round's tasks), wake the long polls; how many
        were new."""
        new = self.queue.enqueue_many(tasks)
        with self._wake:
            self._wake.notify_all()
        return new

    # ---- the single entry point ---------------------------------------------------------

    def handle(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> EndpointResponse:
        """Answer one request (``path`` with its query string, as signed)."""
        try:
            status, out = 200, _encode(self._dispatch(method, path, headers, body))
        except Exception as exc:
            status, out = _failure(exc)
        return self._signed(headers, status, out)

    async def handle_async(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> EndpointResponse:
        """As :meth:`handle`, for an event loop: blocking work runs in worker threads and a
        long poll waits between attempts without holding a thread, so hundreds of nodes may
        long-poll at once (it notices new tasks within ``poll_interval_s``)."""
        if method.upper() != "POST" or path.split("?", 1)[0] != PREFIX + "/poll":
            return await anyio.to_thread.run_sync(self.handle, method, path, headers, body)
        try:
            who, req = await anyio.to_thread.run_sync(self._poll_request, path, headers, body)
            deadline = time.monotonic() + req.wait_s
            while True:
                tasks = await anyio.to_thread.run_sync(
                    self.queue.lease, who.institution, req.max_n, self.lease_s
                )
                left = deadline - time.monotonic()
                if tasks or left <= 0:
                    break
                await anyio.sleep(min(left, self.poll_interval_s))
            status, out = 200, _encode(_tasks_doc(tasks))
        except Exception as exc:
            status, out = _failure(exc)
        return self._signed(headers, status, out)

    def _signed(self, headers: Mapping[str, str], status: int, out: bytes) -> EndpointResponse:
        nonce = header(headers, H_NONCE)
        if not NONCE_PATTERN.fullmatch(nonce):
            nonce = ""
        return EndpointResponse(status, out, sign_response(self.identity, status, nonce, out))

    def _dispatch(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        if len(body) > MAX_BODY:
            raise PayloadTooLarge("request body too large")
        route = path.split("?", 1)[0]
        if not route.startswith(PREFIX + "/"):
            raise NotFound("no such federation endpoint")
        handler = self._routes.get((method.upper(), route[len(PREFIX) :]))
        if handler is None:
            raise NotFound("no such federation endpoint")
        return handler(path, headers, body)

    # ---- authentication -----------------------------------------------------------------

    def _verify_as(
        self,
        keys: list[PublicRecord],
        claimed: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Authenticated:
        verifier = RequestVerifier(
            lambda inst: keys if inst == claimed else [],
            self.nonces,
            window_s=self.window_s,
            clock=self.clock,
        )
        return verifier.verify("POST", path, headers, body)

    def _approved(self, path: str, headers: Mapping[str, str], body: bytes) -> Authenticated:
        """The sender, authenticated against its institution's current keys (one registry
        read); 401 for an unknown or revoked key, 403 for an institution not approved."""
        claimed = header(headers, H_INSTITUTION)
        try:
            inst = self.registry.get(claimed) if claimed else None
        except NotFound:
            inst = None
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        keys = [] if inst is None else [k.record for k in inst.keys if k.active(now)]
        who = self._verify_as(keys, claimed, path, headers, body)
        if inst is None or inst.status != "approved":
            raise Forbidden("institution is not approved")
        return who

    # ---- routes -------------------------------------------------------------------------

    def _hub_identity(self, _path: str, _headers: Mapping[str, str], _body: bytes) -> Any:
        return self.record

    def _register(self, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        req = parse_model(RegisterRequest, body)
        # proof of possession of the key being registered
        self._verify_as([req.record], req.record.institution, path, headers, body)
        return self.registry.register(req.record, req.metadata)

    def _rotate(self, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        who = self._approved(path, headers, body)
        req = parse_model(RotateRequest, body)
        return self.registry.rotate(who.institution, req.record, req.signature)

    def _poll_request(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[Authenticated, PollRequest]:
        who = self._approved(path, headers, body)
        return who, parse_model(PollRequest, body or b"{}")

    def _poll(self, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        who, req = self._poll_request(path, headers, body)
        deadline = time.monotonic() + req.wait_s
        while True:
            tasks = self.queue.lease(who.institution, req.max_n, self.lease_s)
            left = deadline - time.monotonic()
            if tasks or left <= 0:
                return _tasks_doc(tasks)
            with self._wake:
                self._wake.wait(min(left, self.poll_interval_s))

    def _results(self, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        who = self._approved(path, headers, body)
        result = parse_model(TaskResult, body)
        if result.node != who.institution:
            raise Forbidden("result names a node other than the sender")
        task = self.queue.task(result.task_id)
        if task.node != who.institution:
            raise Forbidden("result from a node other than the task's node")
        if result.sealed is not None:
            keys = self.registry.active_keys(who.institution)
            open_envelope(result.sealed, self.identity, keys, context=task.id)
        return SubmitResponse(stored=self.queue.complete(result))

    def _publish(self, path: str, headers: Mapping[str, str], body: bytes) -> Any:
        who = self._approved(path, headers, body)
        req = parse_model(PublishRequest, body)
        if self.on_publish is None:
            raise NotSupported("this hub accepts no publications")
        self.on_publish(who.institution, req.kind, dict(req.body))
        return {"accepted": True}

"""What both node transports share: build signed requests, check the hub's signature on every
answer, turn answers into messages and hub errors back into :mod:`healthmesh.errors`."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from healthmesh.errors import (
    Conflict,
    Forbidden,
    Gone,
    HealthmeshError,
    InvalidInput,
    NotFound,
    NotSupported,
    PayloadTooLarge,
    Unauthorized,
)
from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.messages import (
    InstitutionMetadata,
    PollRequest,
    PublishRequest,
    RegisterRequest,
    Registration,
    SubmitResponse,
    Task,
    TaskResult,
    parse_model,
)
from healthmesh.federation.signing import H_NONCE, new_nonce, sign_request, verify_response
from healthmesh.federation.transport.base import PREFIX, ForgedResponse, TransportError

_BY_STATUS: dict[int, type[HealthmeshError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    410: Gone,
    413: PayloadTooLarge,
    422: InvalidInput,
    501: NotSupported,
}


def hub_error(status: int, body: bytes) -> HealthmeshError:
    """The error an ``OperationOutcome`` answer of the hub stands for (public message)."""
    try:
        issue = orjson.loads(body)["issue"][0]
        message, code = str(issue["diagnostics"]), str(issue["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        message, code = f"hub answered HTTP {status}", "exception"
    exc = _BY_STATUS.get(status, TransportError)(message)
    exc.code = code
    exc.status = status
    return exc


class SignedClient(ABC):
    """A :class:`~.base.NodeTransport` over a ``_send`` that carries bytes to the hub.

    ``hub`` pins the hub's public record; without it ``hub_key_id`` pins its fingerprint and
    the record is fetched once (and without either the first answer is trusted: development
    only).
    """

    def __init__(
        self,
        identity: Identity,
        *,
        hub: PublicRecord | None = None,
        hub_key_id: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.identity = identity
        self._hub = hub
        self._hub_key_id = hub.key_id if hub is not None else hub_key_id
        self.clock = clock

    @abstractmethod
    def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Carry one request; ``(status, headers, body)`` of the answer."""

    def _call(self, method: str, route: str, payload: Any = None, wait_s: float = 0.0) -> Any:
        hub = self.hub_identity()
        path = PREFIX + route
        body = b"" if payload is None else orjson.dumps(payload)
        headers = sign_request(self.identity, method, path, body, now=self.clock())
        headers["Content-Type"] = "application/json"
        status, rh, rb = self._send(method, path, headers, body, wait_s + 30.0)
        try:
            verify_response(hub, status, headers[H_NONCE], rh, rb)
        except Unauthorized as exc:
            raise ForgedResponse(f"hub answer rejected: {exc.message}") from exc
        if status != 200:
            raise hub_error(status, rb)
        try:
            return orjson.loads(rb)
        except ValueError as exc:
            raise TransportError("hub answered something that is not JSON") from exc

    def hub_identity(self) -> PublicRecord:
        """See :meth:`~.base.NodeTransport.hub_identity`."""
        if self._hub is not None:
            return self._hub
        nonce = new_nonce()
        status, rh, rb = self._send("GET", PREFIX + "/hub-identity", {H_NONCE: nonce}, b"", 30.0)
        if status != 200:
            raise hub_error(status, rb)
        try:
            record = PublicRecord.model_validate_json(rb)
        except ValidationError as exc:
            raise TransportError("hub identity is malformed") from exc
        if self._hub_key_id is not None and record.key_id != self._hub_key_id:
            raise ForgedResponse("hub identity does not match the pinned hub key id")
        try:
            verify_response(record, status, nonce, rh, rb)
        except Unauthorized as exc:
            raise ForgedResponse(f"hub identity rejected: {exc.message}") from exc
        self._hub = record
        return record

    def register(self, record: PublicRecord, metadata: InstitutionMetadata) -> Registration:
        """See :meth:`~.base.NodeTransport.register`."""
        req = parse_model(RegisterRequest, {"record": record, "metadata": metadata})
        return Registration.model_validate(self._call("POST", "/register", req.model_dump()))

    def rotate(self, record: PublicRecord, signature: str) -> Registration:
        """Introduce a new key (``signature``: :func:`~..registry.sign_rotation` by the
        current identity); the transport keeps signing with its current identity."""
        doc = self._call("POST", "/rotate", {"record": record.model_dump(), "signature": signature})
        return Registration.model_validate(doc)

    def poll(self, max_n: int = 10, wait_s: float = 0.0) -> list[Task]:
        """See :meth:`~.base.NodeTransport.poll`."""
        req = parse_model(PollRequest, {"max_n": max_n, "wait_s": wait_s})
        doc = self._call("POST", "/poll", req.model_dump(), wait_s=wait_s)
        try:
            return [Task.model_validate(t) for t in doc["tasks"]]
        except (ValidationError, KeyError, TypeError) as exc:
            raise TransportError("hub sent malformed tasks") from exc

    def submit(self, result: TaskResult) -> bool:
        """See :meth:`~.base.NodeTransport.submit`."""
        doc = self._call("POST", "/results", result.model_dump(mode="json"))
        return SubmitResponse.model_validate(doc).stored

    def publish(self, kind: str, body: dict[str, Any]) -> None:
        """See :meth:`~.base.NodeTransport.publish`."""
        req = parse_model(PublishRequest, {"kind": kind, "body": body})
        self._call("POST", "/publish", req.model_dump(mode="json"))

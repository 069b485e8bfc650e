"""The contract a node uses to talk to the hub, whatever carries the bytes.

Every call is a request signed with the node's identity (:mod:`..signing`) and every answer
carries the hub's signature, which the transport checks against the hub's pinned identity
before returning anything, so a node never acts on a forged or tampered answer. Errors the
hub reports are raised as the matching :mod:`healthmesh.errors` class with the hub's public
message; a transport failure raises :class:`TransportError`.

Implementations: :class:`~.inprocess.InProcessTransport` (calls a
:class:`~.endpoint.HubEndpoint` directly, still signing and verifying) and
:class:`~.http.HttpTransport` (httpx against the routes of
:func:`healthmesh.federation.hub_routes.create_federation_router`).
"""

from __future__ import annotations

from typing import Any, Protocol

from healthmesh.errors import HealthmeshError
from healthmesh.federation.identity import PublicRecord
from healthmesh.federation.messages import InstitutionMetadata, Registration, Task, TaskResult

PREFIX = "/federation/v1"


class TransportError(HealthmeshError):
    """The hub could not be reached or answered something that is not the protocol."""

    status = 502
    code = "transient"


class ForgedResponse(TransportError):
    """The hub's answer does not carry a valid signature of the pinned hub key."""

    status = 502
    code = "security"


class NodeTransport(Protocol):
    """What a node may ask of the hub."""

    def register(self, record: PublicRecord, metadata: InstitutionMetadata) -> Registration:
        """Register this node's public identity (pending until an operator approves)."""
        ...

    def poll(self, max_n: int = 10, wait_s: float = 0.0) -> list[Task]:
        """Tasks for this node, leased to it; waits up to ``wait_s`` seconds for the first one
        (long poll) and returns as soon as any exists."""
        ...

    def submit(self, result: TaskResult) -> bool:
        """Hand in a task result; ``True`` if stored now, ``False`` for an identical duplicate."""
        ...

    def publish(self, kind: str, body: dict[str, Any]) -> None:
        """Publish a document (catalog entry, study decision, ...) to the hub."""
        ...

    def hub_identity(self) -> PublicRecord:
        """The hub's public identity (signed by itself; checked against the pinned key id)."""
        ...

"""The in-process twin of the HTTP transport: a node calls a :class:`~.endpoint.HubEndpoint`
in the same process, with the same signed requests and signed answers as over the network
(so tests and the demo exercise the real authentication)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.transport._client import SignedClient
from healthmesh.federation.transport.endpoint import HubEndpoint


class InProcessTransport(SignedClient):
    """``InProcessTransport(node_identity, endpoint)``; the hub's record is taken from the
    endpoint unless ``hub`` pins another."""

    def __init__(
        self,
        identity: Identity,
        endpoint: HubEndpoint,
        *,
        hub: PublicRecord | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(identity, hub=hub or endpoint.record, clock=clock)
        self.endpoint = endpoint

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        resp = self.endpoint.handle(method, path, headers, body)
        return resp.status, resp.headers, resp.body

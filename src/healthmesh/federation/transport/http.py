"""The node's HTTP transport to the hub (httpx), against
:func:`healthmesh.federation.hub_routes.create_federation_router`. Outbound only: the node
calls the hub; nothing calls the node."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.transport._client import SignedClient
from healthmesh.federation.transport.base import TransportError


class HttpTransport(SignedClient):
    """``HttpTransport(identity, "https://hub.example", hub_key_id="…")``.

        ``base_url`` is the hub's base URL (the router is mounted at its root); pin the hub with
        ``hub`` (its record) or ``hub_key_id`` (its fingerprint). ``client`` may be given to
        share a connection pool or set TLS options (its timeout must allow the long polls; an own
    client waits ``wait_s`` + 30 s); :meth:`close` closes only an own client.
    """

    def __init__(
        self,
        identity: Identity,
        base_url: str,
        *,
        hub: PublicRecord | None = None,
        hub_key_id: str | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(identity, hub=hub, hub_key_id=hub_key_id, clock=clock)
        self.base_url = base_url.rstrip("/")
        self._own = client is None
        self.client = client or httpx.Client()

    def _send(
        self, method: str, path: str, headers: dict[str, str], body: bytes, timeout_s: float
    ) -> tuple[int, Mapping[str, str], bytes]:
        extra: dict[str, Any] = {"timeout": timeout_s} if self._own else {}
        try:
            resp = self.client.request(
                method, self.base_url + path, headers=headers, content=body, **extra
            )
        except httpx.HTTPError as exc:
            raise TransportError(f"hub unreachable: {type(exc).__name__}") from exc
        return resp.status_code, resp.headers, resp.content

    def close(self) -> None:
        """Close the connection pool (when this transport created it)."""
        if self._own:
            self.client.close()

"""The SuperLink's face to remote SuperNodes: a TLS endpoint that forwards Flower's Fleet API
(``POST /v1/fleet/*``) to the SuperLink on 127.0.0.1 and answers 404 to everything else.

Flower 1.42 serves its Fleet, Control and Runtime APIs on one port, and its Control API
(submit runs, register SuperNode keys) has no account authentication without Flower's
enterprise plugin, so the SuperLink itself never listens beyond 127.0.0.1; SuperNodes on other
machines reach this proxy instead. It serves the SuperLink's own certificate, forwards the
request body and headers unchanged (Flower's SuperNode authentication signs a timestamp in
headers, which the SuperLink still checks) and verifies the SuperLink with the CA.
"""

from __future__ import annotations

import contextlib
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from healthmesh.hub.serving import ServerThread

_METHOD = re.compile(r"[a-z][a-z-]{0,63}")
_HOP = {"host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade",
        "proxy-connection", "te", "trailer", "content-encoding"}
_MAX_BODY = 512 * 1024 * 1024


def fleet_only_app(
    upstream: str, ca_cert: Path | None, timeout: float = 120.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Starlette:
    """An ASGI app forwarding ``POST /v1/fleet/<method>`` to ``upstream`` (https URL, verified
    with ``ca_cert``); ``transport`` replaces the network (tests)."""
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=str(ca_cert)) if ca_cert is not None else True)
    client = httpx.AsyncClient(base_url=upstream, verify=verify, timeout=timeout,
                               transport=transport)

    async def forward(request: Request) -> Response:
        method = request.path_params["method"]
        if not _METHOD.fullmatch(method):
            return Response(status_code=404)
        body = await request.body()
        if len(body) > _MAX_BODY:
            return Response(status_code=413)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        try:
            got = await client.post(f"/v1/fleet/{method}", content=body, headers=headers)
        except httpx.HTTPError:
            return Response(status_code=502)
        out = {k: v for k, v in got.headers.items() if k.lower() not in _HOP}
        return Response(got.content, status_code=got.status_code, headers=out)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=[Route("/v1/fleet/{method}", forward, methods=["POST"])],
                     lifespan=lifespan)


class FleetProxy(ServerThread):
    """:func:`fleet_only_app` served over TLS at ``host:port`` in a daemon thread."""

    def __init__(self, upstream: str, host: str, port: int, *, certfile: Path, keyfile: Path,
                 ca_cert: Path) -> None:
        super().__init__(fleet_only_app(upstream, ca_cert), host, port, certfile=certfile,
                         keyfile=keyfile, name="Fleet proxy")

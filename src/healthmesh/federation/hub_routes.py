"""The federation endpoints of the hub's HTTP API: a FastAPI ``APIRouter`` that hands every
request under ``/federation/v1`` to a :class:`~healthmesh.federation.transport.HubEndpoint`
(authentication, dispatch, signed answers and OperationOutcome errors all live there).

Mount it in the hub app with ``app.include_router(create_federation_router(endpoint))`` (a
mount prefix is allowed: nodes sign the path from ``/federation/v1`` on).
Long polls wait on the event loop, not in a worker thread (:meth:`HubEndpoint.handle_async`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from healthmesh.federation.transport.base import PREFIX
from healthmesh.federation.transport.endpoint import HubEndpoint

JSON = "application/json"


def create_federation_router(endpoint: HubEndpoint) -> APIRouter:
    """Routes ``/federation/v1/{register,rotate,poll,results,publish,hub-identity}``."""
    router = APIRouter(tags=["federation"])

    async def forward(request: Request) -> Response:
        body = await request.body()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        path = path[max(path.find(PREFIX), 0) :]  # signed from /federation/v1 on, any mount
        resp = await endpoint.handle_async(request.method, path, request.headers, body)
        return Response(resp.body, status_code=resp.status, headers=resp.headers, media_type=JSON)

    router.add_api_route(PREFIX + "/hub-identity", forward, methods=["GET"])
    for name in ("register", "rotate", "poll", "results", "publish"):
        router.add_api_route(f"{PREFIX}/{name}", forward, methods=["POST"])
    return router

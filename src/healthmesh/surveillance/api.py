"""FastAPI router factory for the console: alerts, their lifecycle, and alert plots.

Domain errors (``NotFound``, ``Conflict``, ``InvalidInput``) become HTTP errors here; their
public messages carry no patient data (alerts hold aggregate counts only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel

from healthmesh.errors import HealthmeshError
from healthmesh.surveillance.plots import plot_series
from healthmesh.surveillance.store import AlertStore


class ActionIn(BaseModel):
    """A lifecycle action on an alert."""

    action: Literal["acknowledge", "dismiss", "escalate"]
    actor: str
    note: str = ""


def _http(exc: HealthmeshError) -> HTTPException:
    return HTTPException(status_code=exc.status, detail=exc.message)


def make_router(
    store: AlertStore, *, current_actor: Callable[[], str] | None = None
) -> APIRouter:
    """Routes under the caller's prefix: ``GET /alerts``, ``GET /alerts/{id}``,
    ``POST /alerts/{id}/actions``, ``GET /alerts/{id}/history``, ``GET /alerts/{id}/plot``.

    ``current_actor`` (optional) names the authenticated user and overrides ``actor``.
    """
    router = APIRouter(tags=["surveillance"])

    @router.get("/alerts")
    def list_alerts(status: str | None = None, district: str | None = None,
                    signal: str | None = None,
                    limit: int = Query(200, ge=1, le=5000)) -> list[dict[str, Any]]:
        return [a.as_dict() for a in store.find(status=status, district=district,
                                                signal=signal, limit=limit)]

    @router.get("/alerts/{alert_id}")
    def get_alert(alert_id: int) -> dict[str, Any]:
        try:
            return store.get(alert_id).as_dict()
        except HealthmeshError as exc:
            raise _http(exc) from exc

    @router.post("/alerts/{alert_id}/actions")
    def act(alert_id: int, body: ActionIn) -> dict[str, Any]:
        actor = current_actor() if current_actor is not None else body.actor
        try:
            return store.act(alert_id, body.action, actor, body.note).as_dict()
        except HealthmeshError as exc:
            raise _http(exc) from exc

    @router.get("/alerts/{alert_id}/history")
    def history(alert_id: int) -> list[dict[str, Any]]:
        try:
            store.get(alert_id)
        except HealthmeshError as exc:
            raise _http(exc) from exc
        return store.history(alert_id)

    @router.get("/alerts/{alert_id}/plot")
    def plot(alert_id: int, fmt: Literal["png", "svg"] = "png") -> Response:
        try:
            alert = store.get(alert_id)
        except HealthmeshError as exc:
            raise _http(exc) from exc
        ctx = alert.context
        n = len(ctx.get("observed", []))
        alarm = [i == n - 1 for i in range(n)]
        body = plot_series(ctx.get("periods", []), ctx.get("observed", []),
                           ctx.get("threshold", []), alarm, fmt=fmt,
                           title=f"{alert.signal} in {alert.district} ({alert.detector})")
        media = "image/png" if fmt == "png" else "image/svg+xml"
        return Response(content=body, media_type=media)

    return router

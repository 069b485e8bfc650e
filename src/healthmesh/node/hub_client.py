"""Calling the hub's OAuth2-protected HTTP APIs from a node: a client-credentials token source
and the translation of the hub's OperationOutcome answers into healthmesh errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from healthmesh.errors import Forbidden, HealthmeshError, InvalidInput, NotFound, Unauthorized

_ERRORS: dict[int, type[HealthmeshError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    422: InvalidInput,
}


def raise_for_hub(resp: httpx.Response, what: str) -> None:
    """Raise the healthmesh error matching a refused hub answer (nothing for 2xx/3xx)."""
    if resp.status_code < 400:
        return
    try:
        issue = resp.json()["issue"][0]
        detail = str(issue.get("diagnostics") or issue.get("code"))
    except (ValueError, KeyError, IndexError, TypeError):
        detail = f"HTTP {resp.status_code}"
    error = _ERRORS.get(resp.status_code, HealthmeshError)
    raise error(f"hub refused {what}: {detail}")


def client_credentials(
    hub_url: str,
    client_id: str,
    client_secret: str,
    scope: str = "system/Linkage.c",
    http: httpx.Client | None = None,
) -> Callable[[], str]:
    """A token source: tokens from the hub's token endpoint (OAuth2 client credentials,
    ``client_secret_basic``), fetched again 30 s before they expire."""
    cache: dict[str, Any] = {"token": None, "until": 0.0}

    def token() -> str:
        if cache["token"] is None or time.monotonic() >= cache["until"]:
            post = http.post if http is not None else httpx.post
            resp = post(
                hub_url.rstrip("/") + "/auth/token",
                data={"grant_type": "client_credentials", "scope": scope},
                auth=(client_id, client_secret),
            )
            if resp.status_code >= 400:
                raise Unauthorized("the hub refused the client's credentials")
            body = resp.json()
            cache["token"] = str(body["access_token"])
            cache["until"] = time.monotonic() + float(body.get("expires_in", 300)) - 30.0
        return str(cache["token"])

    return token

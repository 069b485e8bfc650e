"""The FastAPI dependency that turns ``Authorization: Bearer …`` (and an optional
``X-Purpose-Of-Use`` header) into an :class:`~healthmesh.access.context.AccessContext`."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

from fastapi import Request

from healthmesh.access.clients import ClientRegistry
from healthmesh.access.context import PURPOSE_OF_USE_HEADER, AccessContext, check_purpose_of_use
from healthmesh.access.tokens import InvalidToken, TokenService
from healthmesh.errors import Forbidden, NotFound


class _EnabledCache:
    """Remembers for ``ttl_s`` whether a client is enabled, to spare a query per request."""

    def __init__(self, registry: ClientRegistry, ttl_s: float) -> None:
        self._registry, self._ttl = registry, ttl_s
        self._seen: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def enabled(self, client_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hit = self._seen.get(client_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            ok = self._registry.get(client_id).enabled
        except NotFound:
            ok = False
        with self._lock:
            self._seen[client_id] = (now, ok)
        return ok


def bearer_dependency(
    tokens: TokenService,
    *,
    registry: ClientRegistry | None = None,
    enabled_ttl_s: float = 30.0,
) -> Callable[[Request], AccessContext]:
    """A FastAPI dependency returning the caller's :class:`AccessContext`.

    It raises :class:`~healthmesh.access.tokens.InvalidToken` (an ``Unauthorized``; its
    ``www_authenticate()`` gives the header for the 401) when the token is missing, malformed,
    forged, expired, for another audience or signed with a refused algorithm.

    ``X-Purpose-Of-Use`` (a v3-PurposeOfUse code) is validated and put on the context; a token
    bound to a purpose refuses a different one with ``Forbidden``. With ``registry``, tokens
    of clients disabled since issue stop working within ``enabled_ttl_s`` seconds.

    Examples
    --------
    >>> from fastapi import Depends, FastAPI
    >>> from healthmesh.access.keys import SigningKey
    >>> svc = TokenService(SigningKey.generate(), issuer="https://n", audience="https://n/fhir")
    >>> app, auth = FastAPI(), bearer_dependency(svc)
    >>> @app.get("/fhir/Patient")
    ... def search(ctx: AccessContext = Depends(auth)) -> dict[str, str]:
    ...     return {"client": ctx.client_id}
    """
    cache = _EnabledCache(registry, enabled_ttl_s) if registry is not None else None

    def access_context(request: Request) -> AccessContext:
        header = request.headers.get("authorization")
        if not header:
            raise InvalidToken("a bearer token is required", error=None)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise InvalidToken("the Authorization header must carry a Bearer token")
        ctx = tokens.verify(token.strip())
        if cache is not None and not cache.enabled(ctx.client_id):
            raise InvalidToken("the client of this token is disabled")
        purpose = request.headers.get(PURPOSE_OF_USE_HEADER)
        if purpose is not None:
            code = check_purpose_of_use(purpose.strip())
            if ctx.purpose_of_use is not None and ctx.purpose_of_use != code:
                raise Forbidden("the token was granted for a different purpose of use")
            ctx = dataclasses.replace(ctx, purpose_of_use=code)
        return ctx

    return access_context

"""Client authentication at the token endpoint: ``client_secret_basic`` (RFC 6749 §2.3.1)
or ``private_key_jwt`` (RFC 7523, SMART Backend Services); exactly one per request."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote_plus

from healthmesh.access.assertions import ASSERTION_TYPE, AssertionVerifier, ClientAuthError
from healthmesh.access.clients import ClientRecord, ClientRegistry
from healthmesh.errors import Unauthorized


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, public description, HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


def _basic_credentials(header: str) -> tuple[str, str]:
    try:
        decoded = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, IndexError):
        raise ClientAuthError("malformed Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise ClientAuthError("malformed Basic credentials")
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before Base64.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(
    registry: ClientRegistry,
    verifier: AssertionVerifier,
    authorization: str | None,
    form: dict[str, str],
) -> ClientRecord:
    """The client a token request authenticates as.

    Raises :class:`OAuthError` for malformed requests and :class:`ClientAuthError` when the
    credentials are wrong, unknown or of a client that is disabled.
    """
    basic = authorization is not None and authorization.lower().startswith("basic ")
    has_assertion = "client_assertion" in form or "client_assertion_type" in form
    if "client_secret" in form:
        raise OAuthError("invalid_request", "client_secret_post is not supported")
    if basic and has_assertion:
        raise OAuthError("invalid_request", "use exactly one client authentication method")
    if has_assertion:
        if form.get("client_assertion_type") != ASSERTION_TYPE:
            raise ClientAuthError(f"client_assertion_type must be {ASSERTION_TYPE}")
        client = verifier.verify(form.get("client_assertion", ""))
    elif basic and authorization is not None:
        client_id, secret = _basic_credentials(authorization)
        try:
            client = registry.authenticate_secret(client_id, secret)
        except Unauthorized:
            raise ClientAuthError("client authentication failed") from None
    else:
        raise ClientAuthError("client authentication required")
    if form.get("client_id") not in (None, client.client_id):
        raise ClientAuthError("client_id does not match the authenticated client")
    return client

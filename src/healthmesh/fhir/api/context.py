"""What every FHIR route needs: the store, the base URL, the caller's rights, the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson
from starlette.requests import Request

from healthmesh.errors import Forbidden, InvalidInput, PayloadTooLarge
from healthmesh.fhir.store import FhirStore, Stored


class Rights(Protocol):
    """The part of an access token the FHIR API relies on."""

    client_id: str
    purpose_of_use: str | None

    @property
    def scopes(self) -> Any: ...


class AuditSink(Protocol):
    def record(
        self,
        rights: Rights | None,
        *,
        action: str,
        subtype: str,
        outcome: str,
        entities: list[str],
        query: str | None,
    ) -> None: ...


@dataclass
class Api:
    store: FhirStore
    audit: AuditSink
    base_path: str = "/fhir"
    public_base: str | None = None
    max_body: int = 64 * 1024 * 1024
    export_dir: Path = Path("exports")

    def base(self, request: Request) -> str:
        if self.public_base:
            return self.public_base.rstrip("/")
        return str(request.base_url).rstrip("/") + self.base_path

    def allowed(self, rights: Rights, res_type: str, interaction: str) -> bool:
        return bool(rights.scopes.allows(res_type, interaction))

    def restriction(self, rights: Rights, res_type: str, interaction: str) -> Any:
        """SQL condition a query-restricted scope (``system/Observation.rs?category=x``) puts
        on ``res_type``, or ``None`` when the grant is unrestricted."""
        restrictions = getattr(rights.scopes, "restrictions", None)
        if restrictions is None:
            return None
        found = restrictions(res_type, interaction)
        if found is None:
            return None
        return self.store.search_engine.restriction(res_type, found)

    def visible(self, rights: Rights, stored: list[Stored], interaction: str = "r") -> list[Stored]:
        """Keep what the token may see: allowed types, and restricted scopes honoured."""
        out = [s for s in stored if self.allowed(rights, s.res_type, interaction)]
        hidden: set[int] = set()
        for rtype in {s.res_type for s in out}:
            cond = self.restriction(rights, rtype, interaction)
            if cond is not None:
                lids = {s.lid for s in out if s.res_type == rtype}
                hidden |= lids - self.store.search_engine.matching(out, rtype, cond)
        return [s for s in out if s.lid not in hidden]

    def require_visible(self, rights: Rights, stored: Stored, interaction: str = "r") -> None:
        if not self.visible(rights, [stored], interaction):
            raise Forbidden(f"the token's scopes do not allow this {stored.res_type}")

    def audited(
        self,
        rights: Rights,
        action: str,
        subtype: str,
        entities: list[str],
        query: str | None = None,
    ) -> None:
        """Record a successful interaction in the audit trail."""
        self.audit.record(
            rights, action=action, subtype=subtype, outcome="0", entities=entities, query=query
        )

    def require(self, rights: Rights, res_type: str, interaction: str) -> None:
        if not self.allowed(rights, res_type, interaction):
            raise Forbidden(f"the token's scopes do not allow '{interaction}' on {res_type}")

    async def json_body(self, request: Request) -> Any:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_body:
            raise PayloadTooLarge("request body is larger than the server accepts")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_body:
                raise PayloadTooLarge("request body is larger than the server accepts")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            raise InvalidInput("request body is empty")
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(f"request body is not valid JSON (at character {exc.pos})") from None

"""Access control of a node: SMART v2 scopes, OAuth2 clients and tokens (SMART Backend
Services), purpose of use, and the AuditEvent of every interaction.

The pure public face is re-exported here (no web framework, no database). The stateful
parts are imported from their modules: :mod:`healthmesh.access.clients` (SQLAlchemy client
registry), :mod:`healthmesh.access.router` (FastAPI token endpoint and bearer dependency) and
:mod:`healthmesh.access.cli` (the ``clients`` command group).
"""

from healthmesh.access.audit import audit_digest, build_audit_event, outcome_for_status
from healthmesh.access.context import PURPOSE_OF_USE_HEADER, AccessContext, check_purpose_of_use
from healthmesh.access.enforce import (
    capability_security,
    require,
    restricted_searches,
    visible_types,
)
from healthmesh.access.scopes import InvalidScope, ScopeSet, permission_for
from healthmesh.access.tokens import (
    InsufficientScope,
    InvalidToken,
    SigningKey,
    TokenService,
    load_or_create_signing_key,
)

__all__ = [
    "PURPOSE_OF_USE_HEADER",
    "AccessContext",
    "InsufficientScope",
    "InvalidScope",
    "InvalidToken",
    "ScopeSet",
    "SigningKey",
    "TokenService",
    "audit_digest",
    "build_audit_event",
    "capability_security",
    "check_purpose_of_use",
    "load_or_create_signing_key",
    "outcome_for_status",
    "permission_for",
    "require",
    "restricted_searches",
    "visible_types",
]

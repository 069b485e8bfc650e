"""The root error of healthmesh and its domain subclasses.

Every error carries an HTTP status, a FHIR issue code and a *public* message that never
contains patient data. The edge (the REST API, the CLI) translates them in one place.
"""

from __future__ import annotations


class HealthmeshError(Exception):
    """Root of all healthmesh errors.

    ``message`` is public: it must never contain patient data.
    ``location`` is a FHIRPath-like location inside the offending input, when known.
    """

    status: int = 500
    code: str = "exception"  # FHIR IssueType code

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location


class InvalidInput(HealthmeshError):
    """The caller sent something malformed (bad JSON, bad parameter, bad resource)."""

    status = 400
    code = "invalid"


class InvalidResource(InvalidInput):
    """A FHIR resource failed validation; nothing was written."""

    status = 422
    code = "structure"


class NotFound(HealthmeshError):
    status = 404
    code = "not-found"


class Gone(HealthmeshError):
    """The resource existed and was deleted."""

    status = 410
    code = "deleted"


class Conflict(HealthmeshError):
    status = 409
    code = "conflict"


class PreconditionFailed(HealthmeshError):
    """If-Match / conditional operation precondition failed."""

    status = 412
    code = "conflict"


class Unauthorized(HealthmeshError):
    """No valid credentials."""

    status = 401
    code = "login"


class Forbidden(HealthmeshError):
    """Valid credentials, but not allowed (scope, consent, policy)."""

    status = 403
    code = "forbidden"


class ConsentDenied(Forbidden):
    code = "suppressed"


class DisclosureRisk(Forbidden):
    """Releasing a result would risk disclosing individuals."""

    code = "security"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "too-costly"


class NotSupported(HealthmeshError):
    status = 501
    code = "not-supported"


class LedgerIntegrityError(HealthmeshError):
    """The ledger failed a consistency or inclusion check (tampering or a fork)."""

    status = 409
    code = "conflict"

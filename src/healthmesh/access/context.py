"""Who is calling and why: the access context of one request, and purpose-of-use codes.

A request states its purpose in the ``X-Purpose-Of-Use`` header with a code of the HL7
v3-PurposeOfUse value set (codes of the ``v3-ActReason`` code system), e.g. ``TREAT``,
``HRESCH`` or ``PUBHLTH``. The code travels into the AuditEvent and into consent decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from healthmesh.access.scopes import ScopeSet
from healthmesh.errors import InvalidInput

__all__ = [
    "PURPOSE_OF_USE",
    "PURPOSE_OF_USE_HEADER",
    "PURPOSE_OF_USE_SYSTEM",
    "AccessContext",
    "check_purpose_of_use",
]

#: HTTP request header that carries the purpose of use.
PURPOSE_OF_USE_HEADER = "X-Purpose-Of-Use"
#: Code system of the v3-PurposeOfUse value set in FHIR R4.
PURPOSE_OF_USE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActReason"

#: Accepted purpose-of-use codes (the commonly used part of v3-PurposeOfUse) and displays.
PURPOSE_OF_USE: Mapping[str, str] = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "BTG": "break the glass",
    "CAREMGT": "care management",
    "COC": "continuity of care",
    "POPHLTH": "population health",
    "CLINTRL": "clinical trial",
    "CLINTRCH": "clinical trial research",
    "HRESCH": "healthcare research",
    "BIORCH": "biomedical research",
    "DSRCH": "disease specific research",
    "POARCH": "public health and population research",
    "PUBHLTH": "public health",
    "DISASTER": "disaster",
    "THREAT": "threat",
    "HOPERAT": "healthcare operations",
    "HQUALIMP": "health quality improvement",
    "HSYSADMIN": "health system administration",
    "PATSFTY": "patient safety",
    "HLEGAL": "legal",
    "HPAYMT": "healthcare payment",
    "COVERAGE": "coverage under policy or program",
    "PATRQT": "patient requested",
    "FAMRQT": "family requested",
    "PWATRNY": "power of attorney",
    "HMARKT": "healthcare marketing",
    "HTEST": "test health data",
    "TRAIN": "training",
}


class InvalidPurposeOfUse(InvalidInput):
    """The purpose-of-use code is not one this platform accepts."""


def check_purpose_of_use(code: str) -> str:
    """Return ``code`` if it is an accepted v3-PurposeOfUse code, else raise.

    >>> check_purpose_of_use("PUBHLTH")
    'PUBHLTH'
    """
    if code not in PURPOSE_OF_USE:
        raise InvalidPurposeOfUse(
            f"{PURPOSE_OF_USE_HEADER} must be a v3-PurposeOfUse code such as TREAT, HRESCH, PUBHLTH"
        )
    return code


@dataclass(frozen=True)
class AccessContext:
    """The verified identity and grants behind one request.

    Attributes
    ----------
    client_id:
        The registered OAuth client that obtained the token.
    scopes:
        The granted SMART scopes.
    token_id:
        The token's ``jti``, for audit correlation.
    purpose_of_use:
        A v3-PurposeOfUse code, from the request header or the token, if any.
    patient:
        The launch patient id when patient/ scopes were granted (never for backend services).
    """

    client_id: str
    scopes: ScopeSet
    token_id: str
    purpose_of_use: str | None = None
    patient: str | None = None

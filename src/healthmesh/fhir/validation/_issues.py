"""Validation results: one :class:`ValidationIssue` per problem, and the error that carries them."""

from __future__ import annotations

from dataclasses import dataclass

from healthmesh.errors import InvalidResource


@dataclass(frozen=True, slots=True)
class ValidationIssue:
    """One problem found in a resource.

    Attributes
    ----------
    severity:
        ``"error"`` (the resource is not valid R4) or ``"warning"`` (valid, but discouraged).
    code:
        A FHIR ``IssueType`` code: ``structure``, ``value``, ``required``, ``invalid``,
        ``code-invalid``, ``too-long`` ...
    location:
        FHIRPath-style location inside the resource, e.g. ``Patient.name[0].given[1]`` or
        ``Bundle.entry[2].resource.subject``.
    message:
        Public text. It never repeats the offending value, which may be patient data.

    Examples
    --------
    >>> ValidationIssue("error", "structure", "Patient.foo", "unknown element").severity
    'error'
    """

    severity: str
    code: str
    location: str
    message: str


class ResourceValidationError(InvalidResource):
    """A resource failed R4 validation; ``issues`` lists every problem found.

    ``message`` and ``location`` describe the first error, ``code`` is its IssueType.
    """

    def __init__(self, issues: list[ValidationIssue]) -> None:
        errors = [i for i in issues if i.severity == "error"]
        first = errors[0] if errors else ValidationIssue("error", "invalid", "", "invalid")
        super().__init__(f"{first.location}: {first.message}", location=first.location)
        self.code = first.code
        self.issues = issues

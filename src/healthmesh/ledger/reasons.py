"""Reason codes of ``job_failure`` entries: a code derived from the error, never its message,
so nothing about patients can reach the ledger through a failure."""

from __future__ import annotations

import re

from healthmesh.errors import DisclosureRisk, HealthmeshError

_CODE = re.compile(r"[a-z][a-z0-9-]{0,63}")
_RULE = re.compile(r"([a-z][a-z0-9-]{0,63}): ")


def failure_reason(exc: BaseException) -> str:
    """A refusal's rule (``min-institutions``), else a domain error's code (``timeout``,
    ``transient``, ``invalid``), else ``error``.

    >>> failure_reason(DisclosureRisk("min-cell-size: too few patients"))
    'min-cell-size'
    >>> failure_reason(KeyError("x"))
    'error'
    """
    if isinstance(exc, DisclosureRisk):
        found = _RULE.match(exc.message)
        if found:
            return found.group(1)
    if isinstance(exc, HealthmeshError) and _CODE.fullmatch(exc.code):
        return exc.code
    return "error"

"""The disclosure-control policy a node applies to every release (pydantic, with defaults).

Defaults follow DataSHIELD's disclosure settings: minimum cell size 5 (``nfilter.tab``; a
policy below 3 is refused), GLM parameters at most 0.33 × n (``nfilter.glm``), differencing
protection on. Differential privacy is off unless ``dp`` is set; when on, every noised release
costs ``dp.epsilon`` (and ``dp.delta`` for Gaussian) from the researcher's budget for the study,
capped by ``dp.epsilon_cap`` / ``dp.delta_cap``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from healthmesh.errors import InvalidInput

#: never configurable below this (a policy asking for less is refused)
MIN_CELL_FLOOR = 3


class DpSettings(BaseModel):
    """Differential privacy of released counts and sums (through OpenDP)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mechanism: Literal["laplace", "gaussian"] = "laplace"
    #: privacy loss of one noised release
    epsilon: float = Field(default=0.1, gt=0, le=10)
    #: for Gaussian only: the delta of one release
    delta: float = Field(default=1e-7, ge=0, lt=1e-3)
    #: total budget per (researcher, study) at this node
    epsilon_cap: float = Field(default=1.0, gt=0, le=100)
    delta_cap: float = Field(default=1e-5, ge=0, lt=1e-2)

    @model_validator(mode="after")
    def _gaussian_needs_delta(self) -> DpSettings:
        if self.mechanism == "gaussian" and self.delta <= 0:
            raise ValueError("the Gaussian mechanism needs delta > 0")
        if self.epsilon > self.epsilon_cap:
            raise ValueError("epsilon of one release exceeds the cap")
        return self


class PrivacyPolicy(BaseModel):
    """What a node releases: see the module docstring for the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_cell: int = Field(default=5, ge=MIN_CELL_FLOOR, le=1000)
    glm_ratio: float = Field(default=0.33, gt=0, le=1)
    differencing: bool = True
    dp: DpSettings | None = None

    @classmethod
    def parse(cls, settings: Mapping[str, Any] | None) -> PrivacyPolicy:
        """A policy from configuration; :class:`~healthmesh.errors.InvalidInput` naming the
        offending setting when it is not acceptable (e.g. ``min_cell`` below 3)."""
        try:
            return cls.model_validate(dict(settings or {}))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "policy"
            raise InvalidInput(f"privacy policy {where}: {err['msg']}", location=where) from None

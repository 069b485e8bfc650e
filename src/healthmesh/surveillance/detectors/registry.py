"""Build a detector from an R function name and its R control list (as in the manifest)."""

from __future__ import annotations

from typing import Any

from healthmesh.surveillance.detectors.base import Detector, DetectorInputError
from healthmesh.surveillance.detectors.bayes import Bayes
from healthmesh.surveillance.detectors.cusum import Cusum
from healthmesh.surveillance.detectors.ears import EarsC
from healthmesh.surveillance.detectors.farrington import Farrington
from healthmesh.surveillance.detectors.farrington_flexible import FarringtonFlexible
from healthmesh.surveillance.detectors.glr import GlrNb


def from_r(r_function: str, control: dict[str, Any]) -> Detector:
    """Detector for ``r_function`` (``earsC``, ``farringtonFlexible``, ``algo.farrington``,
    ``algo.cusum``, ``glrnb``, ``algo.bayes``) with R's ``control`` names.

    >>> from_r("earsC", {"method": "C2", "alpha": 0.005}).settings()["method"]
    'C2'
    """
    c = control
    if r_function == "earsC":
        return EarsC(method=c.get("method", "C1"), baseline=c.get("baseline", 7),
                     min_sigma=c.get("minSigma", 0.0), alpha=c.get("alpha"))
    if r_function == "farringtonFlexible":
        return FarringtonFlexible(
            b=c.get("b", 5), w=c.get("w", 3), reweight=c.get("reweight", True),
            weights_threshold=c.get("weightsThreshold", 2.58), alpha=c.get("alpha", 0.05),
            trend=c.get("trend", True), p_threshold_trend=c.get("pThresholdTrend", 0.05),
            limit54=tuple(c.get("limit54", (5, 4))), powertrans=c.get("powertrans", "2/3"),
            no_periods=c.get("noPeriods", 1),
            past_weeks_not_included=c.get("pastWeeksNotIncluded"),
            threshold_method=c.get("thresholdMethod", "delta"),
        )
    if r_function == "algo.farrington":
        return Farrington(b=c.get("b", 5), w=c.get("w", 3), reweight=c.get("reweight", True),
                          alpha=c.get("alpha", 0.05), trend=c.get("trend", True),
                          limit54=tuple(c.get("limit54", (5, 4))),
                          powertrans=c.get("powertrans", "2/3"))
    if r_function == "algo.cusum":
        return Cusum(k=c.get("k", 1.04), h=c.get("h", 2.26), m=c.get("m"),
                     trans=c.get("trans", "standard"), alpha=c.get("alpha"))
    if r_function == "glrnb":
        mu0 = c.get("mu0") or {}
        return GlrNb(c_arl=c.get("c.ARL", 5.0), alpha=c.get("alpha", 0.0),
                     theta=c.get("theta"), ret=c.get("ret", "value"),
                     s=mu0.get("S", 1), trend=mu0.get("trend", False))
    if r_function == "algo.bayes":
        return Bayes(b=c.get("b", 0), w=c.get("w", 6), act_y=c.get("actY", True),
                     alpha=c.get("alpha", 0.05))
    raise DetectorInputError(f"unknown detector {r_function!r}")

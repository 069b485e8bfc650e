"""Outbreak detectors, one module per algorithm behind :class:`~.base.Detector`."""

from healthmesh.surveillance.detectors.base import (
    Detector,
    DetectorInputError,
    DetectorResult,
    SeriesFrame,
)
from healthmesh.surveillance.detectors.bayes import Bayes, bayes_system
from healthmesh.surveillance.detectors.cusum import Cusum
from healthmesh.surveillance.detectors.ears import EarsC
from healthmesh.surveillance.detectors.farrington import Farrington
from healthmesh.surveillance.detectors.farrington_flexible import FarringtonFlexible
from healthmesh.surveillance.detectors.glr import GlrNb

__all__ = [
    "Bayes",
    "Cusum",
    "Detector",
    "DetectorInputError",
    "DetectorResult",
    "EarsC",
    "Farrington",
    "FarringtonFlexible",
    "GlrNb",
    "SeriesFrame",
    "bayes_system",
]

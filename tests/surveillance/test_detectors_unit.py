"""Interface, validation and option tests of the detectors (beyond the R reference runs)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

import healthmesh.surveillance.detectors as detectors
from healthmesh.surveillance.detectors import (
    Bayes,
    Cusum,
    Detector,
    DetectorInputError,
    EarsC,
    Farrington,
    FarringtonFlexible,
    GlrNb,
    SeriesFrame,
    bayes_system,
)
from healthmesh.surveillance.detectors._quantiles import qnbinom, qpois
from healthmesh.surveillance.detectors._reference import minus_years
from healthmesh.surveillance.detectors.registry import from_r

ALL = [EarsC(), Cusum(), Bayes(), Farrington(), FarringtonFlexible(), GlrNb()]


@pytest.mark.parametrize("det", ALL, ids=lambda d: type(d).__name__)
def test_every_detector_implements_the_interface(det) -> None:
    assert isinstance(det, Detector)
    assert isinstance(det.settings(), dict) and det.name


def test_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "surveillance.md").read_text()
    for name in detectors.__all__:
        if name[0].isupper() and name not in ("Detector", "DetectorInputError",
                                               "DetectorResult", "SeriesFrame"):
            assert f"`{name}" in doc, f"{name} is not documented in docs/surveillance.md"


def test_c3_variants() -> None:
    rng = np.random.default_rng(1)
    y = rng.poisson(5, (20, 80)).astype(float)
    y[:, 40:43] += 12
    frame = SeriesFrame(observed=y, freq=365)
    r = EarsC("C3").run(frame, range(20, 81))
    cdc = EarsC("C3", c3_variant="cdc").run(frame, range(20, 81))
    z = EarsC("C3").z_alpha
    assert np.array_equal(cdc.alarm, cdc.extras["C3"] >= z)
    # R's rule: alarm exactly when the two previous exceedances already pass z (sd > 0, y > 0)
    prev = cdc.extras["C3"] - np.maximum(0, cdc.extras["C2"] - 1)
    ok = cdc.extras["sigma"] > 0
    y_now = y[:, 19:80]
    assert np.array_equal(r.alarm[ok], ((prev > z) & (y_now > 0))[ok])
    assert (r.alarm != cdc.alarm).any()


def test_validation_errors() -> None:
    frame = SeriesFrame.from_counts(np.arange(30.0))
    with pytest.raises(DetectorInputError):
        EarsC("C4")  # type: ignore[arg-type]
    with pytest.raises(DetectorInputError):
        EarsC(baseline=2)
    with pytest.raises(DetectorInputError):
        EarsC().run(frame, [3])  # not enough baseline
    with pytest.raises(DetectorInputError):
        EarsC().run(frame, [31])  # past the end
    with pytest.raises(DetectorInputError):
        FarringtonFlexible().run(frame, [30])  # needs b years of history
    with pytest.raises(DetectorInputError):
        bayes_system(4)
    with pytest.raises(DetectorInputError):
        from_r("rki1", {})
    with pytest.raises(DetectorInputError):
        SeriesFrame.from_counts([1, 2], dates=[dt.date(2020, 1, 1)])


def test_many_series_equal_one_at_a_time() -> None:
    rng = np.random.default_rng(5)
    y = rng.negative_binomial(4, 0.4, (6, 300)).astype(float)
    frame = SeriesFrame(observed=y)
    for det in (FarringtonFlexible.noufaily(b=3, w=2), Farrington(b=3, w=2), Cusum(),
                bayes_system(2), GlrNb(alpha=None)):
        together = det.run(frame, range(250, 301))
        for i in range(y.shape[0]):
            alone = det.run(SeriesFrame(observed=y[i : i + 1]), range(250, 301))
            np.testing.assert_allclose(together.upperbound[i], alone.upperbound[0], rtol=1e-9, atol=1e-12,
                                       equal_nan=True)
            assert np.array_equal(together.alarm[i], alone.alarm[0])


def test_quantiles_and_dates() -> None:
    assert qnbinom(0.5, np.array([1.0]), np.array([0.5]))[0] == 0.0
    assert np.isnan(qnbinom(0.5, np.array([np.nan]), np.array([0.5]))[0])
    assert qpois(0.99, np.array([0.0]))[0] == 0.0
    assert minus_years(dt.date(2024, 2, 29), 1) == dt.date(2023, 3, 1)

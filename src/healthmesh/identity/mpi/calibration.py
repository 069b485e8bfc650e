"""Label-free thresholds for the patient index, from a sample of two institutions' encodings.

The batch linker's two-groups estimate (:mod:`healthmesh.identity.pprl.threshold`) gives the
score above which a pair is more likely a match; the index links automatically from there
and sends the band just below it (``review_width``) to data stewards.
"""

from __future__ import annotations

from healthmesh.identity.mpi.service import MasterPatientIndex, Thresholds
from healthmesh.identity.pprl.encode import EncodedTable
from healthmesh.identity.pprl.linker import link_encoded


def calibrate(
    mpi: MasterPatientIndex,
    left: EncodedTable,
    right: EncodedTable,
    *,
    review_width: float = 0.08,
    save: bool = True,
) -> Thresholds:
    """Estimate ``upper``/``lower`` from two encoded samples (no labels) and store them."""
    estimate = link_encoded(left, right, id_bonus=mpi.thresholds.id_bonus).estimate
    upper = round(float(estimate.threshold), 4)
    thresholds = Thresholds(
        upper=upper, lower=round(upper - review_width, 4), id_bonus=mpi.thresholds.id_bonus
    )
    if save:
        mpi.save_thresholds(thresholds)
    return thresholds

"""Disclosure control before anything leaves a node: minimum cells, differencing, GLM limits,
differential privacy (OpenDP) and budgets (pure).

Public face: :class:`PrivacyPolicy`, :class:`Guard`, the stores' protocols and memory twins.
"""

from healthmesh.privacy.budget import BudgetStore, MemoryBudgetStore, Spent
from healthmesh.privacy.guard import Guard
from healthmesh.privacy.policy import DpSettings, PrivacyPolicy
from healthmesh.privacy.release_log import MemoryReleaseLog, ReleaseLog

__all__ = [
    "BudgetStore",
    "DpSettings",
    "Guard",
    "MemoryBudgetStore",
    "MemoryReleaseLog",
    "PrivacyPolicy",
    "ReleaseLog",
    "Spent",
]

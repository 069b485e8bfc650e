"""``Guard``: the :class:`~healthmesh.analytics.sdk.ReleaseGuard` of one task at one node.

It holds the node's :class:`~healthmesh.privacy.policy.PrivacyPolicy`, who asks (researcher,
study), the task id, a :class:`~healthmesh.privacy.release_log.ReleaseLog` and a
:class:`~healthmesh.privacy.budget.BudgetStore`. Every refusal raises
:class:`~healthmesh.errors.DisclosureRisk` whose message starts with the rule
(``min-cell-size``, ``differencing``, ``glm-parameters``, ``privacy-budget``,
``dp-required``) and carries only
policy numbers, never values of individuals.

DP releases are charged before noise is drawn (nothing is released when the budget refuses);
the k-th noised release of a task is charged under the id ``<task id>#<k>``, so running the same
task again charges nothing new. A node must still answer a re-delivered task with the result it
stored, not a fresh draw (fresh noise for free would let noise be averaged away).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from healthmesh.errors import DisclosureRisk, InvalidInput
from healthmesh.privacy.budget import BudgetStore, Spent
from healthmesh.privacy.dp import noised
from healthmesh.privacy.policy import DpSettings, PrivacyPolicy
from healthmesh.privacy.release_log import ReleaseLog, check_differencing


class Guard:
    """Disclosure control for one task (see the module docstring)."""

    def __init__(
        self,
        policy: PrivacyPolicy,
        *,
        researcher: str,
        study: str,
        task_id: str,
        log: ReleaseLog,
        budget: BudgetStore,
    ) -> None:
        self.policy = policy
        self.researcher = researcher
        self.study = study
        self.task_id = task_id
        self._log = log
        self._budget = budget
        self._releases = 0

    @property
    def min_cell(self) -> int:
        """The minimum cell size in force."""
        return self.policy.min_cell

    def cohort(self, members: frozenset[str]) -> None:
        """Refuse a non-empty cohort below the minimum cell size, or one differing from an
        earlier released cohort of this researcher by 1..min_cell-1 patients; record it."""
        self.cells([len(members)], what="cohort")
        if not members:
            return
        if self.policy.differencing:
            check_differencing(members, self._log.released(self.researcher), self.min_cell)
        self._log.record(self.researcher, members)

    def cells(self, counts: Sequence[int], *, what: str) -> None:
        """Refuse when any non-zero count is below the minimum cell size."""
        if any(0 < c < self.min_cell for c in counts):
            raise DisclosureRisk(
                f"min-cell-size: a {what} count is below the minimum cell size {self.min_cell}"
            )

    def glm(self, n: int, p: int) -> None:
        """Refuse a model with more than ``glm_ratio * n`` parameters."""
        if p > self.policy.glm_ratio * n:
            raise DisclosureRisk(
                f"glm-parameters: {p} parameters need at least "
                f"{math.ceil(p / self.policy.glm_ratio)} observations at a node"
            )

    def exact(self, what: str) -> None:
        """Refuse an exact (un-noised) release when this node's policy requires DP: a model fit
        that cannot be noised must not bypass the policy."""
        if self.policy.dp is not None:
            raise DisclosureRisk(
                f"dp-required: this node releases only differentially private figures; "
                f"{what} has no DP form"
            )

    def charge(self, epsilon: float, delta: float) -> None:
        """Charge a privacy loss computed elsewhere (e.g. the accountant of a DP training run)
        to the researcher's budget for the study, under this task's next charge id (so a
        re-run task charges nothing new). The caps are the policy's DP caps, or
        :class:`DpSettings`' defaults on a node without a DP policy."""
        caps = self.policy.dp or DpSettings()
        charge_id = f"{self.task_id}#{self._releases}"
        self._releases += 1
        self._budget.charge(
            self.researcher,
            self.study,
            charge_id,
            Spent(epsilon, delta),
            Spent(caps.epsilon_cap, caps.delta_cap),
        )

    def _charge(self) -> None:
        dps = self.policy.dp
        if dps is None:
            return
        cost = Spent(dps.epsilon, dps.delta if dps.mechanism == "gaussian" else 0.0)
        cap = Spent(dps.epsilon_cap, dps.delta_cap)
        charge_id = f"{self.task_id}#{self._releases}"
        self._releases += 1
        self._budget.charge(self.researcher, self.study, charge_id, cost, cap)

    def release_counts(self, counts: Sequence[float], *, sensitivity: float = 1.0) -> list[float]:
        """Counts unchanged without DP; with DP charged, then noised (discrete Laplace or
        Gaussian; ``sensitivity`` = how much one person changes the whole vector)."""
        if self.policy.dp is None:
            return [float(c) for c in counts]
        self._charge()
        return noised(counts, integer=True, sensitivity=sensitivity, settings=self.policy.dp)

    def release_sums(self, sums: Sequence[float], *, bound: float) -> list[float]:
        """Sums of values clipped to ``[-bound, bound]``; with DP each person moves each sum by
        at most ``bound`` (L1 ``k * bound``, L2 ``sqrt(k) * bound`` for k sums)."""
        if self.policy.dp is None:
            return [float(s) for s in sums]
        if not (math.isfinite(bound) and bound > 0):
            raise InvalidInput("differential privacy needs a finite positive bound on values")
        k = len(sums)
        sens = bound * (math.sqrt(k) if self.policy.dp.mechanism == "gaussian" else k)
        self._charge()
        return noised(sums, integer=False, sensitivity=sens, settings=self.policy.dp)

    def release_count(self, count: int) -> float:
        """One count, as :meth:`release_counts`."""
        return self.release_counts([count])[0]

"""Privacy budgets: the (epsilon, delta) a researcher has spent on a study at this node.

Charging is atomic (check and add under one lock / transaction) and idempotent per charge id
(a re-delivered task charges nothing new). Refusals raise
:class:`~healthmesh.errors.DisclosureRisk` naming ``privacy-budget``.

:class:`BudgetStore` is the storage contract (memory here; SQL at the node, one contract suite
``tests/privacy/store_contract.py``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Protocol

from healthmesh.errors import Conflict, DisclosureRisk, InvalidInput

#: float slack when comparing a spend with its cap (sums of many small epsilons)
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Spent:
    epsilon: float = 0.0
    delta: float = 0.0


class BudgetStore(Protocol):
    def spent(self, researcher: str, study: str) -> Spent:
        """What has been charged so far to (researcher, study)."""
        ...

    def charge(
        self,
        researcher: str,
        study: str,
        charge_id: str,
        cost: Spent,
        cap: Spent,
    ) -> Spent:
        """Add ``cost`` unless ``charge_id`` was charged already (then nothing changes; a
        different cost under the same id is a :class:`~healthmesh.errors.Conflict`). Refuses
        (``privacy-budget``) and charges nothing when the total would pass ``cap``. Returns the
        total spent after."""
        ...


def check_cost(cost: Spent) -> None:
    """A cost is two finite non-negative numbers."""
    if not all(math.isfinite(x) and x >= 0 for x in (cost.epsilon, cost.delta)):
        raise InvalidInput("a privacy cost is finite and non-negative")


def over_cap(total: Spent, cap: Spent) -> bool:
    """Whether ``total`` passes ``cap`` (beyond float slack)."""
    return total.epsilon > cap.epsilon + TOLERANCE or total.delta > cap.delta + TOLERANCE


def budget_refusal(cap: Spent) -> DisclosureRisk:
    """The refusal for an exhausted budget (no data in it)."""
    return DisclosureRisk(
        f"privacy-budget: the budget for this study (epsilon {cap.epsilon:g}, delta "
        f"{cap.delta:g}) would be exceeded"
    )


class MemoryBudgetStore:
    """In-memory :class:`BudgetStore`; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spent: dict[tuple[str, str], Spent] = {}
        self._charges: dict[tuple[str, str, str], Spent] = {}

    def spent(self, researcher: str, study: str) -> Spent:
        """What has been charged so far to (researcher, study)."""
        with self._lock:
            return self._spent.get((researcher, study), Spent())

    def charge(self, researcher: str, study: str, charge_id: str, cost: Spent, cap: Spent) -> Spent:
        """Add ``cost`` once per ``charge_id``, refusing past ``cap``."""
        check_cost(cost)
        key = (researcher, study)
        with self._lock:
            now = self._spent.get(key, Spent())
            done = self._charges.get((researcher, study, charge_id))
            if done is not None:
                if done != cost:
                    raise Conflict("this charge id was already charged with a different cost")
                return now
            total = Spent(now.epsilon + cost.epsilon, now.delta + cost.delta)
            if over_cap(total, cap):
                raise budget_refusal(cap)
            self._spent[key] = total
            self._charges[(researcher, study, charge_id)] = cost
            return total

"""Compose a node's side of the federation: its identity, its study records, its data as SQL
over its FHIR store, its privacy stores and policy, its catalog, and the agent that polls the
hub. Used by ``healthmesh node agent``, ``healthmesh node serve --hub``, the in-process
federation and the demo."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from healthmesh.analytics.cohort import Cohort, Variable
from healthmesh.analytics.data import NodeData
from healthmesh.analytics.sdk import Algorithm, ReleaseGuard
from healthmesh.federation.agent import NodeAgent
from healthmesh.federation.identity import Identity, PublicRecord
from healthmesh.federation.messages import InstitutionMetadata, Task
from healthmesh.federation.transport.base import NodeTransport
from healthmesh.fhir.store import FhirStore
from healthmesh.node.studies import NodeStudies
from healthmesh.privacy.budget import BudgetStore
from healthmesh.privacy.guard import Guard
from healthmesh.privacy.policy import PrivacyPolicy
from healthmesh.privacy.release_log import ReleaseLog

#: algorithms a node approves without its operator unless configured otherwise
DEFAULT_AUTO_APPROVE = ("count", "crosstab")


class SnapshotData:
    """The node's data with the last few designs (:meth:`NodeData.matrix`) kept until the
    store is written to: the rounds of an iterative fit (IRLS, Newton) then read the design
    once and all see the same data. Everything else goes to the wrapped data."""

    def __init__(self, data: NodeData, store: FhirStore, size: int = 8) -> None:
        self._data, self._size = data, size
        self._designs: OrderedDict[str, tuple[list[str], Any]] = OrderedDict()
        self._lock = threading.Lock()
        store.listeners.append(lambda _written: self.clear())

    def clear(self) -> None:
        with self._lock:
            self._designs.clear()

    def matrix(self, cohort: Cohort, variables: Sequence[Variable]) -> tuple[list[str], Any]:
        key = json.dumps(
            [cohort.model_dump(mode="json"), [v.model_dump(mode="json") for v in variables]],
            sort_keys=True,
        )
        with self._lock:
            hit = self._designs.get(key)
            if hit is not None:
                self._designs.move_to_end(key)
                return list(hit[0]), hit[1]
        names, x = self._data.matrix(cohort, variables)
        x.flags.writeable = False
        with self._lock:
            self._designs[key] = (list(names), x)
            while len(self._designs) > self._size:
                self._designs.popitem(last=False)
        return list(names), x

    def __getattr__(self, name: str) -> Any:
        return getattr(self._data, name)


def privacy_stores(engine: sa.Engine) -> tuple[ReleaseLog, BudgetStore]:
    """The node's release log and budget store, in its database."""
    from healthmesh.node.analytics.privacy import SqlBudgetStore, SqlReleaseLog

    return SqlReleaseLog(engine), SqlBudgetStore(engine)


def guard_factory(
    policy: PrivacyPolicy, log: ReleaseLog, budget: BudgetStore
) -> Callable[[Task], ReleaseGuard]:
    """One :class:`~healthmesh.privacy.guard.Guard` per compute task."""

    def make(task: Task) -> ReleaseGuard:
        return Guard(
            policy,
            researcher=task.researcher or "",
            study=task.study_id or "",
            task_id=task.id,
            log=log,
            budget=budget,
        )

    return make


def store_catalog(store: FhirStore, institution: str, classification: int) -> Callable[[], Any]:
    """The node's catalog entry builder (:mod:`healthmesh.node.catalog`)."""
    from healthmesh.node.catalog import build_catalog

    def entry() -> Any:
        return build_catalog(store, institution=institution, classification=classification)

    return entry


@dataclass
class FederatedNode:
    """One node's federation parts (see :func:`build_federated_node`)."""

    institution: str
    identity: Identity
    store: FhirStore
    studies: NodeStudies
    agent: NodeAgent
    metadata: InstitutionMetadata
    release_log: ReleaseLog
    budget: BudgetStore
    _thread: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def register(self) -> str:
        """Register this node's identity at the hub; its registration status."""
        return self.agent.transport.register(self.identity.public_record(), self.metadata).status

    def start(self, *, wait_s: float = 20.0) -> None:
        """Run the agent in a background thread until :meth:`stop`."""
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.agent.run,
            args=(self._stop,),
            kwargs={"wait_s": wait_s, "backoff_s": 1.0},
            name=f"agent-{self.institution}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


def build_federated_node(
    *,
    identity: Identity,
    store: FhirStore,
    transport: NodeTransport,
    metadata: InstitutionMetadata,
    hub: PublicRecord | None = None,
    policy: PrivacyPolicy | None = None,
    auto_approve: Iterable[str] = DEFAULT_AUTO_APPROVE,
    data: NodeData | None = None,
    catalog: Callable[[], Mapping[str, Any]] | None = None,
    catalog_interval: float = 3600.0,
    stores: tuple[ReleaseLog, BudgetStore] | None = None,
    publish_catalog: bool = True,
    algorithms: Callable[[str], Algorithm] | None = None,
) -> FederatedNode:
    """A node's agent over its FHIR store: SQL data (``SqlNodeData``), SQL privacy stores and
    study records in the store's database, the catalog of :mod:`healthmesh.node.catalog`.
    ``publish_catalog=False``: the agent publishes no catalog. ``stores`` replaces the SQL
    release log and budget store (e.g. in-memory ones)."""
    from healthmesh.node.analytics import SqlNodeData

    engine = store.db.write_engine
    studies = NodeStudies(engine, auto_approve=auto_approve)
    log, budget = stores if stores is not None else privacy_stores(engine)
    agent = NodeAgent(
        identity=identity,
        transport=transport,
        studies=studies,
        data=data if data is not None else SnapshotData(SqlNodeData(store), store),
        guard_factory=guard_factory(policy or PrivacyPolicy(), log, budget),
        hub=hub,
        catalog=(catalog or store_catalog(store, identity.institution, metadata.classification))
        if publish_catalog
        else None,
        catalog_interval=catalog_interval,
        **({"algorithms": algorithms} if algorithms is not None else {}),
    )
    return FederatedNode(
        identity.institution, identity, store, studies, agent, metadata, log, budget
    )


def data_dir_identity(data_dir: Path, institution: str) -> Identity:
    """The node's federation identity under ``<data_dir>/federation`` (created if missing)."""
    from healthmesh.federation.identity import identity_dir, load_or_create

    return load_or_create(identity_dir(data_dir), institution)

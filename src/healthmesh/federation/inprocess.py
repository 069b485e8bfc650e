"""An in-process federation: one hub and N nodes in one process, for tests, the demo and the
620-node benchmark.

Every part is the real one — the hub of :func:`healthmesh.hub.app.build_hub`, each node with
its own FHIR store, study records, privacy stores and
:class:`~healthmesh.federation.agent.NodeAgent` — and nodes talk to the hub through
:class:`~healthmesh.federation.transport.InProcessTransport`, which still signs every
request and checks every answer. Agents are driven synchronously (the hub's job runner pumps
them while it waits, so a test needs no threads) or in threads
(:meth:`InProcessFederation.start`). ``directory=None`` keeps everything in memory;
``algorithms`` lets an algorithm author run their own modules (default: the built-ins);
``hub_db`` puts the hub's tables in that database (e.g. PostgreSQL).

Example::

    with InProcessFederation(3) as fed:
        fed.load("node-1", resources)
        study = fed.submit({"title": "t", "purpose": "p", "institutions": fed.names,
                            "computations": [{"name": "n", "algorithm": "count"}]})
        record = fed.run(study.study_id, "n")
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthmesh.federation.identity import Identity, identity_dir, load_or_create
from healthmesh.federation.messages import InstitutionKind, InstitutionMetadata
from healthmesh.federation.transport import InProcessTransport
from healthmesh.fhir.store import FhirStore
from healthmesh.hub.app import Hub, build_hub
from healthmesh.hub.results import JobRecord
from healthmesh.hub.settings import HubSettings
from healthmesh.hub.studies import (
    AlgorithmLookup,
    Study,
    StudyRequest,
    builtin_algorithm,
    parse_request,
)
from healthmesh.ledger.note import Ed25519Signer
from healthmesh.ledger.service import LedgerService
from healthmesh.ledger.store import MemoryStore
from healthmesh.node.federated import DEFAULT_AUTO_APPROVE, FederatedNode, build_federated_node
from healthmesh.privacy.budget import MemoryBudgetStore
from healthmesh.privacy.policy import PrivacyPolicy
from healthmesh.privacy.release_log import MemoryReleaseLog


@dataclass(frozen=True)
class NodeSpec:
    """One node of an in-process federation."""

    institution: str
    kind: InstitutionKind = "hospital"
    name: str | None = None


def _specs(nodes: int | Sequence[NodeSpec | str]) -> list[NodeSpec]:
    if isinstance(nodes, int):
        return [NodeSpec(f"node-{i + 1}") for i in range(nodes)]
    return [n if isinstance(n, NodeSpec) else NodeSpec(n) for n in nodes]


class InProcessFederation:
    """A hub and its nodes in this process (see the module docstring)."""

    def __init__(
        self,
        nodes: int | Sequence[NodeSpec | str],
        *,
        directory: Path | None = None,
        policy: PrivacyPolicy | None = None,
        auto_approve: Iterable[str] = DEFAULT_AUTO_APPROVE,
        job_timeout: float = 30.0,
        catalog: bool = True,
        algorithms: AlgorithmLookup = builtin_algorithm,
        hub_db: str | None = None,
    ) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="hm-fed-") if directory is None else None
        root = directory if directory is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.persistent = directory is not None
        self.threaded = False
        #: nodes that do not poll (simulating an institution that is offline)
        self.offline: set[str] = set()
        settings = HubSettings(
            data_dir=root / "hub",
            db=hub_db or (str(root / "hub" / "hub.sqlite") if self.persistent else ":memory:"),
            job_timeout=job_timeout,
        )
        ledger = (
            None
            if self.persistent
            else LedgerService(MemoryStore(), Ed25519Signer.generate("hub/ledger"))
        )
        self.algorithms = algorithms
        self.hub: Hub = build_hub(settings, pump=self.pump, ledger=ledger, algorithms=algorithms)
        self.nodes: dict[str, FederatedNode] = {}
        for spec in _specs(nodes):
            self.nodes[spec.institution] = self._node(spec, root, policy, auto_approve, catalog)
        creds = self.hub.add_researcher("researcher")
        #: the default researcher (an OAuth client of the hub)
        self.researcher = creds.client_id

    def _node(
        self,
        spec: NodeSpec,
        root: Path,
        policy: PrivacyPolicy | None,
        auto_approve: Iterable[str],
        catalog: bool,
    ) -> FederatedNode:
        inst = spec.institution
        if self.persistent:
            identity = load_or_create(identity_dir(root / inst), inst)
            store = FhirStore(root / inst / "node.sqlite")
        else:
            identity = Identity.generate(inst)
            store = FhirStore(":memory:")
        transport = InProcessTransport(identity, self.hub.endpoint)
        metadata = InstitutionMetadata(name=spec.name or inst, kind=spec.kind)
        node = build_federated_node(
            identity=identity,
            store=store,
            transport=transport,
            metadata=metadata,
            hub=self.hub.endpoint.record,
            policy=policy,
            auto_approve=auto_approve,
            stores=None if self.persistent else (MemoryReleaseLog(), MemoryBudgetStore()),
            publish_catalog=catalog,
            algorithms=self.algorithms,
        )
        node.register()
        self.hub.registry.approve(inst, "operator")
        return node

    # -- driving -------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self.nodes)

    def pump(self) -> int:
        """Let every online node poll once and handle its tasks (synchronous mode)."""
        if self.threaded:
            return 0
        return sum(
            n.agent.run_once(wait_s=0.0) for i, n in self.nodes.items() if i not in self.offline
        )

    def start(self, wait_s: float = 1.0) -> None:
        """Run every agent in its own thread (long-polling) instead of pumping."""
        self.threaded = True
        for node in self.nodes.values():
            node.start(wait_s=wait_s)

    # -- helpers -------------------------------------------------------------------------
    def load(self, institution: str, resources: Iterable[Mapping[str, Any]]) -> int:
        """Write FHIR resources (with their ids) into a node's store; how many."""
        n = 0
        with self.nodes[institution].store.writing() as tx:
            for r in resources:
                tx.update(str(r["resourceType"]), str(r["id"]), dict(r))
                n += 1
        return n

    def submit(
        self, request: Mapping[str, Any] | StudyRequest, *, researcher: str | None = None
    ) -> Study:
        """Submit a study as a researcher; the nodes receive it (and auto-approve)."""
        req = request if isinstance(request, StudyRequest) else parse_request(request)
        study = self.hub.submit_study(researcher or self.researcher, req)
        self.pump()
        return self.hub.studies.get(study.study_id)

    def approve(
        self,
        study_id: str,
        institutions: Iterable[str] | None = None,
        computations: Iterable[str] | None = None,
    ) -> None:
        """Operator approval at the nodes (each records it and publishes it to the hub)."""
        comps = list(computations) if computations is not None else None
        for inst in institutions if institutions is not None else self.names:
            node = self.nodes[inst]
            node.agent.publish_decision(node.studies.approve(study_id, comps))

    def reject(self, study_id: str, institution: str, reason: str) -> None:
        node = self.nodes[institution]
        node.agent.publish_decision(node.studies.reject(study_id, reason))

    def run(
        self,
        study_id: str,
        computation: str,
        *,
        researcher: str | None = None,
        timeout: float | None = None,
    ) -> JobRecord:
        """Run one computation of a study (as its researcher) and return the stored record."""
        study = self.hub.studies.get(study_id)
        return self.hub.jobs.run(
            study, computation, researcher or study.researcher, timeout=timeout
        )

    def results(self, study_id: str) -> list[JobRecord]:
        return self.hub.results.for_study(study_id)

    def close(self) -> None:
        for node in self.nodes.values():
            node.stop()
        for node in self.nodes.values():
            node.store.close()
        self.hub.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> InProcessFederation:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

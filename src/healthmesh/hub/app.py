"""Compose the hub: identity keys, institution registry and federation endpoint, researcher
OAuth2 (token endpoint + bearer tokens), studies and decisions, job orchestration, catalog,
the ledger, the patient index and the surveillance console API, in one FastAPI app."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI

from healthmesh import __version__
from healthmesh.access.clients import ClientRegistry, Credentials
from healthmesh.access.context import AccessContext
from healthmesh.access.keys import load_or_create_signing_key
from healthmesh.access.router import bearer_dependency, create_auth_router
from healthmesh.access.tokens import InsufficientScope, TokenService
from healthmesh.analytics.sdk import Algorithm
from healthmesh.db import make_engine
from healthmesh.errors import InvalidInput, NotFound
from healthmesh.federation import identity as fed_identity
from healthmesh.federation.hub_routes import create_federation_router
from healthmesh.federation.messages import Task
from healthmesh.federation.nonces import SqlNonceStore
from healthmesh.federation.queue import SqlTaskQueue
from healthmesh.federation.registry import InstitutionRegistry, SqlRegistry
from healthmesh.federation.transport import HubEndpoint
from healthmesh.fhir.api.app import install_error_handlers
from healthmesh.hub.api import HUB_ADMIN, RESEARCHER_SCOPES, create_hub_router
from healthmesh.hub.catalog import Catalog
from healthmesh.hub.jobs import JobRunner, Pump, ResultSignal
from healthmesh.hub.ledger import HubLedger
from healthmesh.hub.models_api import MODEL_READ, create_models_router
from healthmesh.hub.results import ResultStore
from healthmesh.hub.settings import HubSettings
from healthmesh.hub.studies import (
    AlgorithmLookup,
    Study,
    StudyRequest,
    StudyStore,
    builtin_algorithm,
)
from healthmesh.learning.registry import ModelRegistry
from healthmesh.ledger.keys import generate_key, load_signer, save_key
from healthmesh.ledger.note import Ed25519Signer
from healthmesh.ledger.service import LedgerService

log = logging.getLogger(__name__)

#: study announcements stay deliverable this long (a node offline for days still gets them)
ANNOUNCE_TTL_S = 30 * 24 * 3600.0


@dataclass
class Hub:
    """Everything one hub process holds."""

    settings: HubSettings
    engine: sa.Engine
    identity: fed_identity.Identity
    registry: InstitutionRegistry
    queue: SqlTaskQueue
    endpoint: HubEndpoint
    studies: StudyStore
    results: ResultStore
    catalog: Catalog
    ledger: HubLedger
    clients: ClientRegistry
    tokens: TokenService
    jobs: JobRunner
    app: FastAPI = field(repr=False)
    #: trained models (every federated_learning run registers its model here)
    models: ModelRegistry | None = field(default=None, repr=False)

    @property
    def token_url(self) -> str:
        return self.settings.base_url() + "/auth/token"

    def add_researcher(self, name: str, scopes: str = RESEARCHER_SCOPES) -> Credentials:
        """Register a researcher's OAuth2 client (client credentials)."""
        return self.clients.add(name, scopes)

    def issue_token(self, client_id: str) -> str:
        """A token carrying a registered client's scopes (demo and operators)."""
        record = self.clients.get(client_id)
        token, _ = self.tokens.issue(record.client_id, record.scopes)
        return token

    def submit_study(self, researcher: str, request: StudyRequest) -> Study:
        """Validate, store, record in the ledger and announce a study to its institutions."""
        known = [i.institution for i in self.registry.institutions("approved")]
        study = self.studies.submit(researcher, request, known=known)
        self.ledger.study_submitted(
            study.study_id, researcher, study.protocol_digest, request.institutions
        )
        announcement = {
            "study_id": study.study_id,
            "researcher": researcher,
            "protocol_digest": study.protocol_digest,
            "request": request.model_dump(mode="json"),
        }
        now = dt.datetime.now(dt.UTC)
        for inst in request.institutions:
            self.endpoint.enqueue(
                Task.new(
                    job_id="announce-" + study.study_id,
                    node=inst,
                    kind="study",
                    issued_at=now,
                    ttl_s=ANNOUNCE_TTL_S,
                    study_id=study.study_id,
                    args=announcement,
                    researcher=researcher,
                )
            )
        return study

    def on_publish(self, institution: str, kind: str, body: dict[str, Any]) -> None:
        """What approved nodes publish (signed): catalog entries and study decisions."""
        if kind == "catalog":
            self.catalog.publish(institution, body)
        elif kind == "study-decision":
            study_id = str(body.get("study_id", ""))
            study = self.studies.get(study_id)
            if body.get("protocol_digest") != study.protocol_digest:
                raise InvalidInput("the decision is about another version of the study")
            reason = body.get("reason")
            decision = self.studies.record_decision(
                study_id,
                institution,
                str(body.get("state", "")),
                computations=[str(c) for c in body.get("computations") or []],
                reason=str(reason) if reason else None,
            )
            self.ledger.decision(study_id, institution, decision.state, study.protocol_digest)
        else:
            raise InvalidInput("unknown publication kind")

    def close(self) -> None:
        self.ledger.service.close()
        self.engine.dispose()


def _ledger_signer(settings: HubSettings) -> Ed25519Signer:
    path = settings.data_dir / "ledger-log.key"
    if not path.exists():
        save_key(path, "log", generate_key("log", f"{settings.hub_id}/ledger"))
    return load_signer(path, "log")


def scope_dependency(
    auth: Callable[..., AccessContext], resource: str, permission: str
) -> Callable[..., str]:
    """A dependency returning the caller's client id when its token allows the action."""

    def principal(ctx: AccessContext = Depends(auth)) -> str:
        if not ctx.scopes.allows(resource, permission):
            raise InsufficientScope(f"this needs the scope system/{resource}.{permission}")
        return ctx.client_id

    return principal


def registry_algorithms(
    models: ModelRegistry, fallback: AlgorithmLookup, flower_tls: Path | None = None
) -> AlgorithmLookup:
    """``fallback`` with ``federated_learning`` bound to the hub's model registry and, with
    ``flower_tls``, to the hub's Flower CA kept there (docs/learning.md, link security)."""
    from healthmesh.learning.governance import ALGORITHM as LEARNING
    from healthmesh.learning.study import federated_learning
    from healthmesh.learning.tls import LinkSecurity

    bound = federated_learning(models, LinkSecurity(tls_dir=flower_tls))

    def lookup(name: str) -> Algorithm:
        return bound if name == LEARNING else fallback(name)

    return lookup


def build_hub(
    settings: HubSettings,
    *,
    algorithms: AlgorithmLookup = builtin_algorithm,
    pump: Pump | None = None,
    ledger: LedgerService | None = None,
) -> Hub:
    """Build a hub from its settings (database, keys under ``data_dir``).

    ``pump`` is called while a job waits for results (the in-process federation drives its
    node agents with it); ``ledger`` replaces the SQL ledger (e.g. an in-memory one)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database())
    identity = fed_identity.load_or_create(settings.data_dir / "federation", settings.hub_id)
    registry: InstitutionRegistry = SqlRegistry(engine)
    models = ModelRegistry(engine)
    if algorithms is builtin_algorithm:
        algorithms = registry_algorithms(models, builtin_algorithm,
                                         settings.data_dir / "flower-tls")
    queue = SqlTaskQueue(engine)
    ledger_service = ledger or LedgerService.open(
        settings.database(),
        _ledger_signer(settings),
        quorum=settings.ledger_quorum,
        hub_actor=settings.hub_id,
    )
    hub_ledger = HubLedger(ledger_service, settings.hub_id)
    results = ResultStore(engine)
    base = settings.base_url()
    tokens = TokenService(
        load_or_create_signing_key(settings.data_dir / "hub-signing-key.pem"),
        issuer=base + "/auth",
        audience=base,
        lifetime_s=settings.token_lifetime,
    )
    clients = ClientRegistry(engine)
    holder: dict[str, Hub] = {}
    signal = ResultSignal(queue)
    endpoint = HubEndpoint(
        identity,
        signal,  # a TaskQueue that also wakes waiting jobs
        registry,
        SqlNonceStore(engine),
        on_publish=lambda inst, kind, body: holder["hub"].on_publish(inst, kind, body),
    )
    jobs = JobRunner(
        queue=queue,
        enqueue=endpoint.enqueue,
        enqueue_many=endpoint.enqueue_many,
        hub=identity,
        registry=registry,
        results=results,
        ledger=hub_ledger,
        algorithms=algorithms,
        timeout=settings.job_timeout,
        pump=pump,
        signal=signal,
    )
    app = FastAPI(
        title=f"healthmesh hub ({settings.hub_id})",
        version=__version__,
        docs_url=None,
        redoc_url=None,
    )
    hub = Hub(
        settings,
        engine,
        identity,
        registry,
        queue,
        endpoint,
        StudyStore(engine, algorithms=algorithms),
        results,
        Catalog(engine),
        hub_ledger,
        clients,
        tokens,
        jobs,
        app,
        models,
    )
    holder["hub"] = hub
    install_error_handlers(app)
    auth = bearer_dependency(tokens, registry=clients)
    token_url = base + "/auth/token"
    supported = (*RESEARCHER_SCOPES.split(), HUB_ADMIN, "system/Linkage.cruds", "system/Alert.rsu",
                 MODEL_READ)
    app.include_router(
        create_auth_router(clients, tokens, token_url=token_url, scopes_supported=supported)
    )
    app.include_router(create_federation_router(endpoint))
    app.include_router(create_hub_router(hub, auth))
    app.include_router(
        create_models_router(models, auth, studies_of=partial(_studies_of, hub.studies))
    )
    _mount_ledger(app, ledger_service)
    _mount_optional(app, engine, auth, registry)
    return hub


def _mount_ledger(app: FastAPI, service: LedgerService) -> None:
    from healthmesh.ledger.api import create_router

    app.include_router(create_router(service), prefix="/ledger")


def _mount_optional(
    app: FastAPI,
    engine: sa.Engine,
    auth: Callable[..., AccessContext],
    registry: InstitutionRegistry,
) -> None:
    """The patient index (``/mpi``, scope ``system/Linkage.*``) and the surveillance
    console (``/surveillance``, scope ``system/Alert.*``), each on the hub's database.

    The index takes encodings only from institutions it registered *and* the federation
    registry does not hold as pending, rejected or revoked (one known only to the index —
    registered by the operator for linkage alone — is admitted by that registration)."""
    from healthmesh.identity.mpi.api import make_router as mpi_router
    from healthmesh.identity.mpi.service import MasterPatientIndex
    from healthmesh.surveillance.api import make_router as alert_router
    from healthmesh.surveillance.store import AlertStore

    app.include_router(
        mpi_router(
            MasterPatientIndex(engine, admits=partial(_not_barred, registry)),
            scope_dependency(auth, "Linkage", "c"),
        ),
        prefix="/mpi",
    )
    app.include_router(
        alert_router(AlertStore(engine)),
        prefix="/surveillance",
        dependencies=[Depends(scope_dependency(auth, "Alert", "r"))],
    )


def _studies_of(studies: StudyStore, researcher: str) -> set[str]:
    """The ids of the studies the researcher client submitted (one query)."""
    return {s["id"] for s in studies.list(researcher)}


def _not_barred(registry: InstitutionRegistry, institution: str) -> bool:
    """False for an institution the federation registry holds but has not approved."""
    try:
        return registry.get(institution).status == "approved"
    except NotFound:
        return True


__all__ = ["Hub", "HubSettings", "build_hub"]

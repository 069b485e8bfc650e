"""``healthmesh node``: serve a node, register clients, import NDJSON, reindex."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from healthmesh.node.settings import NodeSettings

if TYPE_CHECKING:
    from healthmesh.fhir.store import FhirStore
    from healthmesh.node.federated import FederatedNode
    from healthmesh.node.studies import NodeStudies, NodeStudy


def _settings(data_dir: Path | None, db: str | None, **extra: object) -> NodeSettings:
    values: dict[str, object] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        values["data_dir"] = data_dir
    if db is not None:
        values["db"] = db
    return NodeSettings(**values)  # type: ignore[arg-type]


data_dir_opt = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory (env HEALTHMESH_NODE_DATA_DIR; default ~/.healthmesh).",
)
db_opt = click.option(
    "--db",
    default=None,
    help="SQLite path or postgresql:// URL (env HEALTHMESH_NODE_DB; "
    "default <data-dir>/node.sqlite).",
)
institution_opt = click.option(
    "--institution", default=None, help="Institution id (env HEALTHMESH_NODE_INSTITUTION)."
)


@click.group()
@click.pass_context
def group(ctx: click.Context) -> None:
    """Run and administer an institution node."""
    # default database for sub-commands that take --db (e.g. `clients`): the node's own
    ctx.obj = {"db": NodeSettings().database()}


def _mount_clients() -> None:
    """`healthmesh node clients add|list|show|disable|enable|rotate-secret|set-scopes|set-keys`."""
    from healthmesh.access.cli import clients

    group.add_command(clients, name="clients")


@group.command()
@data_dir_opt
@db_opt
@click.option("--host", default=None, help="Listen address (env HEALTHMESH_NODE_HOST; 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (env HEALTHMESH_NODE_PORT; 8080).")
@click.option(
    "--public-url", default=None, help="Base URL clients use (env HEALTHMESH_NODE_PUBLIC_URL)."
)
@institution_opt
@click.option(
    "--hub", "hub_url", default=None, help="Also run the federation agent against this hub."
)
@click.option("--hub-key-id", default=None, help="Expected federation key id of the hub.")
def serve(
    data_dir: Path | None,
    db: str | None,
    host: str | None,
    port: int | None,
    public_url: str | None,
    institution: str | None,
    hub_url: str | None,
    hub_key_id: str | None,
) -> None:
    """Serve the node's FHIR R4 API at /fhir and its token endpoint at /auth/token; with
    ``--hub``, run the federation agent in the same process."""
    import uvicorn

    from healthmesh.node.app import build_node

    settings = _settings(
        data_dir,
        db,
        host=host,
        port=port,
        public_url=public_url,
        institution=institution,
        hub_url=hub_url,
        hub_key_id=hub_key_id,
    )
    node = build_node(settings)
    click.echo(f"FHIR base: {node.fhir_base}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    federated = None
    if settings.hub_url:
        federated = _federated(settings, node.store)
        click.echo(f"federation: registration {federated.register()} at {settings.hub_url}")
        federated.start()
    try:
        uvicorn.run(
            node.app, host=settings.host, port=settings.port, log_level="info", access_log=False
        )
    finally:
        if federated is not None:
            federated.stop()


@group.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@data_dir_opt
@db_opt
def import_cmd(files: tuple[Path, ...], data_dir: Path | None, db: str | None) -> None:
    """Bulk-import NDJSON files (optionally .gz) or FHIR Bundles; bad lines are quarantined."""
    from healthmesh.fhir.bulk.importer import import_files
    from healthmesh.fhir.store import FhirStore

    settings = _settings(data_dir, db)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = FhirStore(settings.database())
    report = import_files(store, list(files), quarantine_dir=settings.data_dir / "quarantine")
    click.echo(report.summary())
    store.close()


@group.command()
@data_dir_opt
@db_opt
def reindex(data_dir: Path | None, db: str | None) -> None:
    """Rebuild every search index from the stored resources (after definitions change)."""
    from healthmesh.fhir.store import FhirStore
    from healthmesh.fhir.store.reindex import reindex_all

    settings = _settings(data_dir, db)
    store = FhirStore(settings.database())
    n = reindex_all(store)
    click.echo(f"reindexed {n} resources")
    store.close()


_mount_clients()


def _mount_federation_init() -> None:
    """`healthmesh node init --data-dir D --institution ID`: the node's federation keys."""
    from healthmesh.federation.cli import init

    group.add_command(init)


_mount_federation_init()


@group.command()
@click.option("--since", required=True, help="First day (YYYY-MM-DD).")
@click.option("--until", required=True, help="Day after the last (YYYY-MM-DD).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="CSV to write.")
@click.option(
    "--protect",
    "method",
    type=click.Choice(["suppress", "noise", "none"]),
    default="suppress",
    show_default=True,
    help="Small-count protection.",
)
@click.option(
    "--threshold",
    type=int,
    default=5,
    show_default=True,
    help="Cells below this are suppressed (suppress).",
)
@click.option(
    "--epsilon",
    type=float,
    default=1.0,
    show_default=True,
    help="Privacy parameter of the noise (noise).",
)
@data_dir_opt
@db_opt
@institution_opt
def counts(
    since: str,
    until: str,
    out: Path,
    method: str,
    threshold: int,
    epsilon: float,
    data_dir: Path | None,
    db: str | None,
    institution: str | None,
) -> None:
    """Write protected syndromic and pharmacy daily counts (the only data that leaves)."""
    import csv
    import datetime as dt

    from healthmesh.fhir.store import FhirStore
    from healthmesh.node.signals import node_counts
    from healthmesh.surveillance.signals.protection import Protection

    settings = _settings(data_dir, db, institution=institution)
    store = FhirStore(settings.database())
    try:
        rows = node_counts(
            store,
            settings.institution,
            dt.date.fromisoformat(since),
            dt.date.fromisoformat(until),
            Protection(method, threshold=threshold, epsilon=epsilon),  # type: ignore[arg-type]
        )
    finally:
        store.close()
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["institution", "date", "district", "signal", "count"])
        for r in rows:
            writer.writerow(
                [
                    r.institution,
                    r.date.isoformat(),
                    r.district,
                    r.signal,
                    "" if r.count is None else r.count,
                ]
            )
    click.echo(f"wrote {len(rows)} cells to {out}")


# -- federation: the agent and the node's own study decisions ----------------------------------
hub_opt = click.option(
    "--hub", "hub_url", default=None, help="The hub's base URL (env HEALTHMESH_NODE_HUB_URL)."
)
hub_key_opt = click.option(
    "--hub-key-id",
    default=None,
    help="Expected federation key id of the hub (env HEALTHMESH_NODE_HUB_KEY_ID).",
)


def _federated(settings: NodeSettings, store: FhirStore) -> FederatedNode:
    """The node's federation parts over its store, talking to ``settings.hub_url``."""
    from healthmesh.federation.messages import InstitutionMetadata
    from healthmesh.federation.transport import HttpTransport
    from healthmesh.node.federated import build_federated_node, data_dir_identity

    if not settings.hub_url:
        raise click.UsageError("give --hub URL (or HEALTHMESH_NODE_HUB_URL)")
    identity = data_dir_identity(settings.data_dir, settings.institution)
    transport = HttpTransport(identity, settings.hub_url, hub_key_id=settings.hub_key_id)
    return build_federated_node(
        identity=identity,
        store=store,
        transport=transport,
        metadata=InstitutionMetadata(
            name=settings.institution,
            kind=settings.kind,  # type: ignore[arg-type]
            classification=settings.classification,
        ),
        auto_approve=settings.auto_approved(),
    )


@group.command()
@data_dir_opt
@db_opt
@hub_opt
@hub_key_opt
@institution_opt
@click.option("--kind", type=click.Choice(["hospital", "clinic", "cdc"]), default=None)
@click.option(
    "--auto-approve",
    default=None,
    help="Algorithms approved without the operator "
    "(comma-separated; env HEALTHMESH_NODE_AUTO_APPROVE; default count,crosstab).",
)
def agent(
    data_dir: Path | None,
    db: str | None,
    hub_url: str | None,
    hub_key_id: str | None,
    institution: str | None,
    kind: str | None,
    auto_approve: str | None,
) -> None:
    """Register at the hub and run the federation agent: poll for tasks, decide on studies by
    policy, compute approved computations, publish the catalog. Stops on Ctrl-C."""
    import threading

    from healthmesh.errors import HealthmeshError
    from healthmesh.fhir.store import FhirStore

    settings = _settings(
        data_dir,
        db,
        hub_url=hub_url,
        hub_key_id=hub_key_id,
        institution=institution,
        kind=kind,
        auto_approve=auto_approve,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    store = FhirStore(settings.database())
    node = _federated(settings, store)
    try:
        status = node.register()
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{settings.institution} at {settings.hub_url}: registration {status}")
    stop = threading.Event()
    try:
        node.agent.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        store.close()


@group.group()
def studies() -> None:
    """Studies this node was asked to take part in, and its own decisions on them."""


def _node_studies(settings: NodeSettings) -> NodeStudies:
    from healthmesh.db import make_engine
    from healthmesh.node.studies import NodeStudies

    return NodeStudies(make_engine(settings.database()))


@studies.command("list")
@data_dir_opt
@db_opt
@click.option("--state", type=click.Choice(["pending", "approved", "rejected"]), default=None)
def studies_list(data_dir: Path | None, db: str | None, state: str | None) -> None:
    """List studies with the node's decision."""
    for s in _node_studies(_settings(data_dir, db)).list(state):
        asked = ",".join(f"{c['name']}:{c['algorithm']}" for c in s.as_dict()["requested"])
        click.echo(f"{s.study_id}\t{s.state}\t{','.join(s.computations)}\t{asked}\t{s.title}")


def _decide(settings: NodeSettings, decide: Callable[[NodeStudies], NodeStudy]) -> None:
    """Record a decision locally, then publish it (signed) to the hub when one is configured."""
    from healthmesh.errors import HealthmeshError
    from healthmesh.fhir.store import FhirStore

    try:
        study = decide(_node_studies(settings))
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{study.study_id}: {study.state} {','.join(study.computations)} (recorded here)")
    if not settings.hub_url:
        click.echo("no hub configured: the decision is published when you run this with --hub")
        return
    store = FhirStore(settings.database())
    try:
        _federated(settings, store).agent.publish_decision(study)
        click.echo("published to the hub")
    except HealthmeshError as exc:
        raise click.ClickException(f"recorded here, not published: {exc.message}") from None
    finally:
        store.close()


@studies.command("approve")
@click.argument("study_id")
@click.option(
    "--computation",
    "computations",
    multiple=True,
    help="Approve only these computations (default: all of the study's).",
)
@data_dir_opt
@db_opt
@hub_opt
@hub_key_opt
@institution_opt
def studies_approve(
    study_id: str,
    computations: tuple[str, ...],
    data_dir: Path | None,
    db: str | None,
    hub_url: str | None,
    hub_key_id: str | None,
    institution: str | None,
) -> None:
    """Approve a study's computations at this node and publish the decision."""
    settings = _settings(
        data_dir, db, hub_url=hub_url, hub_key_id=hub_key_id, institution=institution
    )
    _decide(settings, lambda s: s.approve(study_id, list(computations) or None))


@studies.command("reject")
@click.argument("study_id")
@click.option("--reason", required=True)
@data_dir_opt
@db_opt
@hub_opt
@hub_key_opt
@institution_opt
def studies_reject(
    study_id: str,
    reason: str,
    data_dir: Path | None,
    db: str | None,
    hub_url: str | None,
    hub_key_id: str | None,
    institution: str | None,
) -> None:
    """Reject a study at this node (nothing of it is computed here) and publish it."""
    settings = _settings(
        data_dir, db, hub_url=hub_url, hub_key_id=hub_key_id, institution=institution
    )
    _decide(settings, lambda s: s.reject(study_id, reason))


@group.command("link")
@data_dir_opt
@db_opt
@hub_opt
@institution_opt
@click.option(
    "--client-id",
    envvar="HEALTHMESH_NODE_LINKAGE_CLIENT_ID",
    required=True,
    help="The institution's OAuth client at the hub (env HEALTHMESH_NODE_LINKAGE_CLIENT_ID).",
)
@click.option(
    "--client-secret",
    envvar="HEALTHMESH_NODE_LINKAGE_CLIENT_SECRET",
    required=True,
    help="Its secret (env HEALTHMESH_NODE_LINKAGE_CLIENT_SECRET).",
)
@click.option(
    "--project-key-file",
    required=True,
    type=click.Path(exists=True, path_type=Path),
    help="The linkage project's secret (shared among institutions, never with the hub).",
)
def link(
    data_dir: Path | None,
    db: str | None,
    hub_url: str | None,
    institution: str | None,
    client_id: str,
    client_secret: str,
    project_key_file: Path,
) -> None:
    """Send this node's linkage encodings to the hub's patient index and write the current
    enterprise ids into its Patients (identifier + seealso links)."""
    from healthmesh.errors import HealthmeshError
    from healthmesh.fhir.store import FhirStore
    from healthmesh.node.hub_client import client_credentials
    from healthmesh.node.linkage_sync import sync_enterprise_ids

    settings = _settings(data_dir, db, hub_url=hub_url, institution=institution)
    if not settings.hub_url:
        raise click.UsageError("give the hub's URL (--hub or HEALTHMESH_NODE_HUB_URL)")
    store = FhirStore(settings.database())
    try:
        token = client_credentials(settings.hub_url, client_id, client_secret)
        s = sync_enterprise_ids(
            store,
            settings.hub_url,
            token,
            project_key_file.read_bytes().strip(),
            settings.institution,
        )
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    click.echo(
        f"{s.patients} patients: {s.submitted} submitted ({s.linked} linked, {s.new} new, "
        f"{s.review} to review), {s.skipped} unchanged encodings not sent; "
        f"{s.updated_patients} Patients updated, {s.unchanged_patients} unchanged"
    )


@group.command("score")
@data_dir_opt
@db_opt
@hub_opt
@click.option("--model", "model_ref", required=True, help="NAME or NAME:VERSION (default latest).")
@click.option("--expected-digest", default=None, help="sha256:<hex> the model must have.")
@click.option("--client-id", envvar="HEALTHMESH_NODE_MODEL_CLIENT_ID", required=True,
              help="The institution's OAuth client at the hub, scope system/Model.rs "
              "(env HEALTHMESH_NODE_MODEL_CLIENT_ID).")
@click.option("--client-secret", envvar="HEALTHMESH_NODE_MODEL_CLIENT_SECRET", required=True,
              help="Its secret (env HEALTHMESH_NODE_MODEL_CLIENT_SECRET).")
def score(
    data_dir: Path | None,
    db: str | None,
    hub_url: str | None,
    model_ref: str,
    expected_digest: str | None,
    client_id: str,
    client_secret: str,
) -> None:
    """Fetch a trained model from the hub (hash checked), score this node's consented cohort
    and store the scores as RiskAssessments here (nothing is sent back)."""
    from healthmesh.errors import HealthmeshError
    from healthmesh.fhir.store import FhirStore
    from healthmesh.node.hub_client import client_credentials
    from healthmesh.node.risk_scores import MODEL_SCOPE, score_from_hub

    name, _, ver = model_ref.partition(":")
    if ver and not (ver.isdigit() and int(ver) > 0):
        raise click.UsageError("--model: the version must be a positive integer")
    settings = _settings(data_dir, db, hub_url=hub_url)
    if not settings.hub_url:
        raise click.UsageError("give the hub's URL (--hub or HEALTHMESH_NODE_HUB_URL)")
    store = FhirStore(settings.database())
    try:
        token = client_credentials(settings.hub_url, client_id, client_secret, MODEL_SCOPE)
        run = score_from_hub(store, settings.hub_url, token, name, int(ver) if ver else None,
                             expected_digest=expected_digest)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        store.close()
    click.echo(
        f"model {run.model} v{run.version} ({run.digest}): {run.scored} patients scored, "
        f"{run.written} RiskAssessments written, {run.unchanged} unchanged, "
        f"{run.withdrawn} withdrawn"
    )

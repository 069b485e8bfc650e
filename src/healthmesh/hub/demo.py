"""The regional demo: a hub and four institutions (two hospitals, a clinic, a disease-control
centre) in one process, each node on its own SQLite file with the synthetic region's data,
talking to the hub over real HTTP; then one study end to end (request → decisions → a count,
a cross-tab and a federated logistic regression).

Data: :func:`healthmesh.synth.region.generate_region` restricted to those four institutions
and a small population, ingested per institution by the shipped adapters (HL7 v2, CSV, DICOM,
FHIR consents) — so the demo exercises the whole path from native exports to federated
results. A data directory that already holds the nodes is reused (no second generation).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from healthmesh.errors import Conflict
from healthmesh.federation.messages import InstitutionMetadata
from healthmesh.federation.transport import HttpTransport
from healthmesh.hub.app import Hub, build_hub
from healthmesh.hub.serving import ServerThread, free_port
from healthmesh.hub.settings import HubSettings
from healthmesh.node.app import Node, build_node
from healthmesh.node.federated import FederatedNode, build_federated_node, data_dir_identity
from healthmesh.node.settings import NodeSettings

INSTITUTIONS = {"H01": "hospital", "H02": "hospital", "C01": "clinic", "CDC01": "cdc"}
ATC = "http://www.whocc.no/atc"

STUDY: dict[str, Any] = {
    "title": "Diabetes treatment and blood-pressure treatment in adults",
    "purpose": "Describe adults treated for type 2 diabetes and estimate its association with "
    "age, sex and antihypertensive treatment across the region's institutions.",
    "cohort": {"include": [{"kind": "age", "min": 18}]},
    "variables": [
        {"kind": "sex", "name": "sex"},
        {"kind": "age", "name": "age"},
        {"kind": "medication", "name": "diabetes_treated", "codes": [f"{ATC}|A10*"]},
        {
            "kind": "medication",
            "name": "bp_treated",
            "codes": [f"{ATC}|C02*", f"{ATC}|C03*", f"{ATC}|C07*", f"{ATC}|C08*", f"{ATC}|C09*"],
        },
    ],
    "computations": [
        {
            "name": "adults",
            "algorithm": "count",
            "params": {"criteria": [{"kind": "medication", "codes": [f"{ATC}|A10*"]}]},
        },
        {
            "name": "sex_by_diabetes",
            "algorithm": "crosstab",
            "params": {"variables": ["sex", "diabetes_treated"]},
        },
        {
            "name": "diabetes_model",
            "algorithm": "glm",
            "params": {
                "family": "binomial",
                "outcome": "diabetes_treated",
                "covariates": ["age", "sex", "bp_treated"],
            },
        },
    ],
}


def _ingest(args: tuple[str, str, str]) -> tuple[str, int, float]:
    from healthmesh.synth.region.ingest import ingest_institution

    region, inst, db = args
    load = ingest_institution(Path(region), inst, Path(db))
    return inst, load.resources, load.seconds


def prepare_data(
    folder: Path, people: int, seed: int, say: Callable[[str], None], workers: int = 2
) -> None:
    """Generate the four institutions' exports and ingest each into its node database
    (skipped when every node database exists)."""
    dbs = {inst: folder / inst / "node.sqlite" for inst in INSTITUTIONS}
    if all(db.exists() for db in dbs.values()):
        say("reusing the nodes' databases in " + str(folder))
        return
    from healthmesh.synth.region import RegionConfig, generate_region

    began = time.perf_counter()
    config = RegionConfig(
        seed=seed,
        people=people,
        hospitals=2,
        clinics=1,
        cdc=1,
        pharmacies=0,
        days=365,
        outbreaks=1,
    )
    generate_region(config, folder / "region")
    say(f"generated a synthetic region of {people} people ({time.perf_counter() - began:.0f} s)")
    for db in dbs.values():
        db.parent.mkdir(parents=True, exist_ok=True)
        db.unlink(missing_ok=True)
    jobs = [(str(folder / "region"), inst, str(db)) for inst, db in dbs.items()]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for inst, n, seconds in pool.map(_ingest, jobs):
            say(f"ingested {inst}'s native exports: {n} FHIR resources ({seconds:.0f} s)")


@dataclass
class Region:
    """The running demo: hub, nodes (FHIR API + federation agent), researcher credentials."""

    hub: Hub
    hub_server: ServerThread
    nodes: dict[str, Node] = field(default_factory=dict)
    federated: dict[str, FederatedNode] = field(default_factory=dict)
    servers: list[ServerThread] = field(default_factory=list)
    researcher: tuple[str, str] = ("", "")

    @property
    def hub_url(self) -> str:
        return self.hub_server.url

    def researcher_token(self) -> str:
        """A token from the hub's token endpoint (client credentials, over HTTP)."""
        cid, secret = self.researcher
        r = httpx.post(
            self.hub_url + "/auth/token",
            data={
                "grant_type": "client_credentials",
                "scope": "system/Study.c system/Study.rs system/Catalog.rs",
            },
            auth=(cid, secret),
            timeout=30,
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def close(self) -> None:
        for fed in self.federated.values():
            fed.stop()
        for server in self.servers:
            server.stop()
        self.hub_server.stop()
        for node in self.nodes.values():
            node.close()
        self.hub.close()


def start_region(folder: Path, host: str, port: int) -> Region:
    """Serve the hub and every node over HTTP and start the nodes' agents (``port`` 0: free
    ports; else the hub on ``port`` and the nodes on the next four)."""
    hub_port = port or free_port(host)
    hub = build_hub(
        HubSettings(
            data_dir=folder / "hub", host=host, port=hub_port, token_lifetime=3600, job_timeout=120
        )
    )
    region = Region(hub, ServerThread(hub.app, host, hub_port).start())
    for i, (inst, kind) in enumerate(INSTITUTIONS.items(), start=1):
        node_port = port + i if port else free_port(host)
        settings = NodeSettings(
            institution=inst,
            data_dir=folder / inst,
            host=host,
            port=node_port,
            token_lifetime=3600,
            kind=kind,
        )
        node = build_node(settings)
        region.nodes[inst] = node
        region.servers.append(ServerThread(node.app, host, node_port).start())
        identity = data_dir_identity(settings.data_dir, inst)
        fed = build_federated_node(
            identity=identity,
            store=node.store,
            transport=HttpTransport(identity, region.hub_url, hub_key_id=hub.identity.key_id),
            metadata=InstitutionMetadata(name=inst, kind=kind),  # type: ignore[arg-type]
            auto_approve=settings.auto_approved(),
        )
        fed.register()
        hub.registry.approve(inst, "demo-operator")  # the operator compares key ids first
        fed.start(wait_s=1.0)
        region.federated[inst] = fed
    try:
        creds = hub.add_researcher("demo-researcher")
    except Conflict:  # a reused data directory: a fresh client under a new name
        creds = hub.add_researcher(f"demo-researcher-{int(time.time())}")
    region.researcher = (creds.client_id, creds.client_secret or "")
    return region


def run_study(region: Region, say: Callable[[str], None], timeout: float = 120.0) -> dict[str, Any]:
    """Submit the demo study over HTTP, let the nodes decide (policy for count and cross-tab,
    each node's operator for the regression), run the three computations; their records."""
    token = region.researcher_token()
    with httpx.Client(
        base_url=region.hub_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
    ) as client:
        r = client.post("/studies", json={**STUDY, "institutions": list(INSTITUTIONS)})
        r.raise_for_status()
        sid = r.json()["id"]
        say(f"researcher submitted study {sid} to {', '.join(INSTITUTIONS)}")
        deadline = time.monotonic() + timeout
        while True:
            decisions = client.get(f"/studies/{sid}").json()["decisions"]
            if all(d["state"] != "pending" for d in decisions) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for d in decisions:
            say(f"  {d['institution']}: {d['state']} by policy {d['computations']}")
        for inst, fed in region.federated.items():
            study = fed.studies.approve(sid, ["diabetes_model"])
            fed.agent.publish_decision(study)
            say(f"  {inst}'s operator approves diabetes_model")
        ran = client.post(f"/studies/{sid}/run", json={})
        ran.raise_for_status()
        return {"study": sid, "jobs": ran.json()["jobs"]}


def describe(jobs: list[dict[str, Any]]) -> list[str]:
    """Readable lines for the study's results."""
    lines: list[str] = []
    for job in jobs:
        lines.append(
            f"[{job['computation']}] {job['status']}; taking part: {', '.join(job['participants'])}"
        )
        if job["refused"]:
            lines.append("  refused: " + ", ".join(f"{k} ({v})" for k, v in job["refused"].items()))
        result = job["result"] or {}
        if "coefficients" in result:
            lines.append(f"  n = {result.get('n')}, iterations = {result.get('iterations')}")
            for c in result["coefficients"]:
                lines.append(
                    f"  {c['name']:>14}  {c['estimate']:+.4f}  (se {c['se']:.4f}, p {c['p']:.3g})"
                )
        elif "cells" in result:
            for cell in result["cells"]:
                lines.append(f"  {cell['key']}: {cell['n']}")
        elif "n" in result:
            lines.append(
                f"  adults: {result['n']}  by node: {result.get('by_node')}  "
                f"treated for diabetes: {result.get('criteria')}"
            )
        if job.get("error"):
            lines.append("  " + job["error"])
    return lines

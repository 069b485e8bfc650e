"""Study latency with 4 nodes: count, cross-tab and logistic GLM (medians of repeats).

    .venv/bin/python benchmarks/study_latency.py [--patients 500] [--repeats 5] [--http]

In process by default (hub + 4 nodes, agents pumped by the hub while it waits); ``--http``
serves the hub with uvicorn and runs each node's agent in its own thread, long-polling the hub
over real HTTP (signed requests and answers, sealed results) — the demo's set-up.
Data: synthetic patients (tests/hub/data.py), SQLite node stores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "hub"))

from data import resources, study

from healthmesh.federation.identity import Identity
from healthmesh.federation.inprocess import InProcessFederation
from healthmesh.federation.messages import InstitutionMetadata
from healthmesh.federation.transport import HttpTransport
from healthmesh.fhir.store import FhirStore
from healthmesh.hub.app import build_hub
from healthmesh.hub.serving import ServerThread, free_port
from healthmesh.hub.settings import HubSettings
from healthmesh.node.federated import build_federated_node

NODES = {"H01": "hospital", "H02": "hospital", "C01": "clinic", "CDC01": "cdc"}


def _time(run, repeats: int, clear=lambda: None) -> tuple[float, list[float], object]:  # type: ignore[no-untyped-def]
    times, rec = [], None
    for _ in range(repeats):
        clear()  # cold: no design kept from an earlier run
        t = time.perf_counter()
        rec = run()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times, rec


def in_process(patients: int, repeats: int) -> None:
    with InProcessFederation(list(NODES), job_timeout=120) as fed:
        for k, inst in enumerate(fed.names):
            fed.load(inst, resources(inst, patients, k))
        st = fed.submit(study(fed.names))
        fed.approve(st.study_id, computations=["model"])
        for name in ("n", "table", "model"):
            med, times, rec = _time(
                lambda: fed.run(st.study_id, name),
                repeats,
                lambda: [n.agent.data.clear() for n in fed.nodes.values()],  # type: ignore[attr-defined]
            )
            print(
                f"{name:>6}: median {med * 1000:.0f} ms  runs "
                f"{', '.join(f'{x * 1000:.0f}' for x in times)}  [{rec.status}]"
            )  # type: ignore[attr-defined]


def over_http(patients: int, repeats: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="hm-latency-"))
    port = free_port()
    hub = build_hub(HubSettings(data_dir=tmp / "hub", port=port, job_timeout=120))
    server = ServerThread(hub.app, "127.0.0.1", port).start()
    nodes = []
    for k, (inst, kind) in enumerate(NODES.items()):
        ident = Identity.generate(inst)
        store = FhirStore(tmp / f"{inst}.sqlite")
        with store.writing() as tx:
            for r in resources(inst, patients, k):
                tx.update(r["resourceType"], r["id"], r)
        node = build_federated_node(
            identity=ident,
            store=store,
            transport=HttpTransport(ident, server.url, hub_key_id=hub.identity.key_id),
            metadata=InstitutionMetadata(name=inst, kind=kind),  # type: ignore[arg-type]
        )
        node.register()
        hub.registry.approve(inst, "op")
        node.start(wait_s=5.0)
        nodes.append(node)
    researcher = hub.add_researcher("bench").client_id
    from healthmesh.hub.studies import parse_request

    st = hub.submit_study(researcher, parse_request(study(list(NODES))))
    deadline = time.monotonic() + 60
    while any(d.state == "pending" for d in hub.studies.get(st.study_id).decisions.values()):
        if time.monotonic() > deadline:
            raise SystemExit("the nodes did not decide")
        time.sleep(0.05)
    for node in nodes:
        node.agent.publish_decision(node.studies.approve(st.study_id, ["model"]))
    for name in ("n", "table", "model"):
        med, times, rec = _time(
            lambda: hub.jobs.run(hub.studies.get(st.study_id), name, researcher),
            repeats,
            lambda: [n.agent.data.clear() for n in nodes],  # type: ignore[attr-defined]
        )
        print(
            f"{name:>6}: median {med * 1000:.0f} ms  runs "
            f"{', '.join(f'{x * 1000:.0f}' for x in times)}  [{rec.status}]"
        )  # type: ignore[attr-defined]
    for node in nodes:
        node.stop()
        node.store.close()
    server.stop()
    hub.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=500, help="patients per node")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--http", action="store_true")
    args = ap.parse_args()
    mode = "HTTP (uvicorn hub, agents long-polling)" if args.http else "in process"
    print(f"4 nodes x {args.patients} patients, {mode}, {args.repeats} repeats")
    (over_http if args.http else in_process)(args.patients, args.repeats)


if __name__ == "__main__":
    main()

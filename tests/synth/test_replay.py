"""A generated hospital's HL7 v2 messages replayed over MLLP to a node listener: all ACKed AA."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from click.testing import CliRunner

from healthmesh.cli import main
from healthmesh.fhir.store import FhirStore
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.mllp import MllpListener
from healthmesh.ingest.pipeline import Pipeline
from healthmesh.ingest.quarantine import QuarantineStore
from healthmesh.synth.region import RegionConfig, generate_region
from healthmesh.synth.region.replay import ack_code, hospital_messages


def test_replay_over_mllp_is_acknowledged_and_stored(tmp_path: Path) -> None:
    region = tmp_path / "region"
    generate_region(RegionConfig(seed=4, people=150, days=60), region)
    messages = hospital_messages(region, "H02")
    assert messages
    stamps = [m.split(b"|", 7)[6] for m in messages]
    assert stamps == sorted(stamps)
    db = tmp_path / "h02.sqlite"
    store, quarantine = FhirStore(db), QuarantineStore(db)
    listener = MllpListener(Pipeline(store, quarantine, "H02"), Hl7v2Adapter("H02"))
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(listener.start("127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        result = CliRunner().invoke(main, ["synth", "mllp", str(region), "--hospital", "H02",
                                           "--port", str(port), "--limit", "20"])
    finally:
        # asyncio servers are not thread-safe: close it on its own loop's thread (closing it
        # from here raced the loop detaching the last connection: a CI failure)
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(server.wait_closed())
        loop.close()
        listener.close()
    assert result.exit_code == 0, result.output
    assert len(messages) > 20
    assert "sent 20 messages" in result.output and "AA 20" in result.output
    assert listener.summary.balanced() and listener.summary.quarantined == 0
    assert store.count("Patient") > 0
    store.close()
    quarantine.close()
    assert ack_code(b"MSH|...\rMSA|AE|1\r") == "AE" and ack_code(b"junk") == "?"

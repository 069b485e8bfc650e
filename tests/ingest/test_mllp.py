"""The MLLP listener over real loopback sockets: framing, ACK AA / AE / AR per message,
several clients, and the counts (received = converted + quarantined)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from healthmesh.fhir.store import FhirStore
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.mllp import END, START, MllpListener, ack, send
from healthmesh.ingest.pipeline import Pipeline
from healthmesh.ingest.quarantine import QuarantineStore


def adt(n: int, birth: str = "19800101") -> bytes:
    return (
        f"MSH|^~\\&|HIS|H1|NODE|N1|20240101||ADT^A04^ADT_A01|C{n}|P|2.5\r"
        f"PID|1||M{n}^^^H1^MR||Li^Lei||{birth}|M\r"
    ).encode()


def msa(reply: bytes) -> list[str]:
    seg = next(s for s in reply.split(b"\r") if s.startswith(b"MSA"))
    return seg.decode().split("|")


async def _exchange(pipe: Pipeline, batches: list[list[bytes]]) -> list[list[bytes]]:
    listener = MllpListener(pipe, Hl7v2Adapter("H1"))
    server = await listener.start("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with server:
            return list(await asyncio.gather(*(send("127.0.0.1", port, b) for b in batches)))
    finally:
        listener.close()


def test_ack_per_message_over_loopback(tmp_path: Path) -> None:
    db = tmp_path / "n.sqlite"
    pipe = Pipeline(FhirStore(db), QuarantineStore(db), "H1")
    good = [adt(i) for i in range(5)]
    bad_date = adt(99, birth="1980-01-01")
    unsupported = adt(98).replace(b"ADT^A04^ADT_A01", b"QRY^Q01^QRY_Q01")
    garbage = b"this is not hl7"
    (replies,) = asyncio.run(_exchange(pipe, [[*good, bad_date, unsupported, garbage]]))
    codes = [msa(r)[1] for r in replies]
    assert codes == ["AA"] * 5 + ["AE", "AR", "AR"]
    assert [msa(r)[2] for r in replies[:5]] == [f"C{i}" for i in range(5)]
    assert b"ERR||PID-7|207|E" in replies[5] and b"not a valid HL7 date" in replies[5]
    assert replies[0].startswith(b"MSH|^~\\&|NODE|N1|HIS|H1|")
    assert b"|ACK^A04^ACK|" in replies[0]
    assert pipe.store.count("Patient") == 5
    assert pipe.quarantine.count() == 3


def test_concurrent_clients_and_resend_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "n.sqlite"
    pipe = Pipeline(FhirStore(db), QuarantineStore(db), "H1")
    batches = [[adt(c * 100 + i) for i in range(10)] for c in range(3)]
    replies = asyncio.run(_exchange(pipe, batches))
    assert all(msa(r)[1] == "AA" for rs in replies for r in rs)
    assert pipe.store.count("Patient") == 30
    again = asyncio.run(_exchange(pipe, batches[:1]))
    assert all(msa(r)[1] == "AA" for r in again[0])
    assert pipe.store.count("Patient") == 30


def test_ack_builder_handles_a_missing_header() -> None:
    reply = ack(b"garbage", "AR", "message does not start with an MSH segment", "MSH")
    assert reply.startswith(b"MSH|^~\\&|")
    assert b"\rMSA|AR||message does not start with an MSH segment\r" in reply
    assert START not in reply and END not in reply

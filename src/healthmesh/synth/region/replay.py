"""Send a hospital's generated HL7 v2 messages over MLLP, in time order, and tally the ACKs.

Hospitals deliver HL7 v2 over MLLP rather than as files; this replays a region's files to a
node's listener (``healthmesh ingest`` side) with the MLLP client of
:mod:`healthmesh.ingest.mllp`, message by message, waiting for each ACK.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path


def hospital_messages(region: Path, hospital: str) -> list[bytes]:
    """The hospital's messages from all its files, ordered by MSH-7 (then file order)."""
    from healthmesh.ingest.hl7v2.decode import split_messages

    keyed: list[tuple[bytes, int, bytes]] = []
    for path in sorted((region / hospital / "hl7").glob("*.hl7")):
        for raw in split_messages(path.read_bytes()):
            fields = raw.data.split(b"\r", 1)[0].split(b"|")
            stamp = fields[6] if len(fields) > 6 else b""
            keyed.append((stamp, len(keyed), raw.data))
    keyed.sort()
    return [data for _, _, data in keyed]


def ack_code(reply: bytes) -> str:
    """The MSA-1 acknowledgment code of an ACK (``AA``, ``AE``, ``AR``), or ``?``."""
    start = reply.find(b"MSA|")
    return reply[start + 4 : start + 6].decode("ascii", "replace") if start >= 0 else "?"


def replay_mllp(
    region: Path, hospital: str, host: str, port: int, limit: int | None = None
) -> Counter[str]:
    """Send the hospital's messages to ``host:port``; returns the count of each ACK code."""
    from healthmesh.ingest.mllp import send

    messages = hospital_messages(region, hospital)[:limit]
    acks = asyncio.run(send(host, port, messages))
    return Counter(ack_code(a) for a in acks)

"""An MLLP listener for HL7 v2 (asyncio): each frame 0x0B ... 0x1C 0x0D is ingested and
answered with an ACK — AA (accepted), AE (application error: kept in quarantine) or AR
(rejected: not HL7, bad header or unsupported message type; also kept in quarantine).

Framing is three lines of ``StreamReader.readuntil``; python-hl7's MLLP helpers decode every
frame with one fixed text encoding and parse it into its containers, while we need the raw
bytes (per-message MSH-18 charsets, exact quarantine copies). Writes run on one worker
thread, so the event loop keeps accepting while the store commits, and writes stay ordered.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from healthmesh.ingest.adapter import Rejected
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.hl7v2.decode import split_messages
from healthmesh.ingest.pipeline import Pipeline, Summary

log = logging.getLogger(__name__)

START = b"\x0b"
END = b"\x1c\x0d"


def frame(message: bytes) -> bytes:
    """Wrap one message in MLLP framing (segments must end in CR)."""
    return START + message + END


def ack(message: bytes, code: str, text: str = "", location: str = "") -> bytes:
    """An original-mode ACK for ``message`` (sender and receiver swapped, MSA-2 = MSH-10).

    >>> ack(b"MSH|^~\\\\&|HIS|H1|NODE|N1|2024||ADT^A01|C42|P|2.5\\r", "AA").split(b"\\r")[1]
    b'MSA|AA|C42'
    """
    head = message.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")
    if not head.startswith("MSH") or len(head) < 8:
        head = "MSH|^~\\&"
    sep = head[3]
    f = head.split(sep)
    f += [""] * (19 - len(f))
    now = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S+0000")
    control = f[9]
    comp = f[1][:1] or "^"
    parts = f[8].split(comp)
    trigger = parts[1] if len(parts) > 1 else ""
    msh = sep.join(
        [
            "MSH",
            f[1],
            f[4],
            f[5],
            f[2],
            f[3],
            now,
            "",
            f"ACK{comp}{trigger}{comp}ACK",
            f"ACK{control}"[:20],
            f[10] or "P",
            f[11] or "2.5",
        ]
    )
    segs = [msh, sep.join(["MSA", code, control] + ([_clean(text)] if text else []))]
    if code != "AA":
        segs.append(sep.join(["ERR", "", _clean(location), "207", "E", "", "", _clean(text)]))
    return ("\r".join(segs) + "\r").encode("latin-1", "replace")


def _clean(text: str) -> str:
    """ACK text without HL7 separators (reasons are public and contain no patient data)."""
    return "".join(" " if c in "|^~\\&\r\n" else c for c in text)


def ack_code(rejected: Rejected) -> str:
    """AR when the message itself is unacceptable (header, type, encoding), else AE."""
    return "AR" if rejected.location.startswith("MSH") else "AE"


class MllpListener:
    """Receives frames, writes them through a pipeline, answers each with an ACK."""

    def __init__(self, pipeline: Pipeline, adapter: Hl7v2Adapter) -> None:
        self.pipeline = pipeline
        self.adapter = adapter
        self.summary = Summary()
        self.received = 0
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mllp-write")

    def handle(self, data: bytes) -> bytes:
        """Ingest one frame's content; return the ACK bytes (synchronous; runs on the writer)."""
        raws = list(split_messages(data))
        if not raws:
            return ack(data, "AR", "empty frame", "MSH")
        code, text, location = "AA", "", ""
        for raw in raws:
            self.received += 1
            outcome = self.adapter.convert_one(raw, source=f"mllp#{self.received}")
            result = self.pipeline.write_one(self.adapter.format, outcome, self.summary, raw.data)
            if result == "quarantined":
                if isinstance(outcome, Rejected):
                    c, text, location = ack_code(outcome), outcome.reason, outcome.location
                else:
                    c, text, location = "AE", "refused by the FHIR store", ""
                code = "AR" if "AR" in (code, c) else c
        return ack(raws[0].data, code, text, location)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    block = await reader.readuntil(END)
                except asyncio.IncompleteReadError:
                    break
                start = block.find(START)
                content = block[start + 1 : -len(END)] if start >= 0 else block[: -len(END)]
                reply = await loop.run_in_executor(self._writer, self.handle, content)
                writer.write(frame(reply))
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError) as exc:
            log.warning("MLLP connection closed: %s", type(exc).__name__)
        finally:
            writer.close()

    async def start(self, host: str = "127.0.0.1", port: int = 2575) -> asyncio.Server:
        """Start listening; the caller serves it (``async with server: await ...``)."""
        return await asyncio.start_server(self._client, host, port, limit=64 * 1024 * 1024)

    def close(self) -> None:
        self._writer.shutdown(wait=True)


async def send(
    host: str, port: int, messages: Sequence[bytes], on_ack: Callable[[bytes], None] | None = None
) -> list[bytes]:
    """Send messages over one MLLP connection, one at a time, and return the ACKs."""
    reader, writer = await asyncio.open_connection(host, port)
    acks = []
    try:
        for message in messages:
            writer.write(frame(message))
            await writer.drain()
            block = await reader.readuntil(END)
            reply = block[block.find(START) + 1 : -len(END)]
            acks.append(reply)
            if on_ack is not None:
                on_ack(reply)
    finally:
        writer.close()
        await writer.wait_closed()
    return acks

"""The HL7 v2 adapter: bytes of a file (or one MLLP frame) -> one outcome per message.

Nothing raises out of ``convert``: a message that cannot be decoded, parsed or mapped becomes
a ``Rejected`` with its own bytes, a public reason and the v2 location (e.g. "PID-7").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from healthmesh.ingest.adapter import Converted, Outcome, Rejected
from healthmesh.ingest.hl7v2.access import V2Message
from healthmesh.ingest.hl7v2.datatypes import Ctx, MappingError
from healthmesh.ingest.hl7v2.decode import DecodeError, RawMessage, decode_message, split_messages
from healthmesh.ingest.hl7v2.memo import PatientMemo
from healthmesh.ingest.hl7v2.messages import map_message

log = logging.getLogger(__name__)


def prune(node: Any) -> Any:
    """Drop empty strings, lists and objects (FHIR forbids them) throughout a resource."""
    t = type(node)
    if t is dict:
        return _prune_dict(node)
    if t is list:
        return _prune_list(node)
    return node


def _prune_dict(node: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in node.items():
        t = type(v)
        if t is str:  # the usual leaf first
            if v:
                out[k] = v
        elif t is dict:
            v = _prune_dict(v)
            if v:
                out[k] = v
        elif t is list:
            v = _prune_list(v)
            if v:
                out[k] = v
        elif v is not None:
            out[k] = v
    return out


def _prune_list(node: list[Any]) -> list[Any]:
    items = []
    for v in node:
        t = type(v)
        if t is str:
            if v:
                items.append(v)
        elif t is dict:
            v = _prune_dict(v)
            if v:
                items.append(v)
        elif t is list:
            v = _prune_list(v)
            if v:
                items.append(v)
        elif v is not None:
            items.append(v)
    return items


class Hl7v2Adapter:
    """HL7 v2.x messages -> FHIR R4 resources.

    Parameters
    ----------
    institution:
        The receiving institution; with the sending facility (MSH-4) it scopes every
        deterministic id, so two hospitals' MRN 123 stay two patients.
    default_tz:
        Offset given to times that carry none (HL7 allows local time without offset).

    >>> a = Hl7v2Adapter("demo")
    >>> msg = b"MSH|^~\\\\&|HIS|H1|||20240101||ADT^A04|1|P|2.5\\rPID|1||M1^^^H1^MR||Li^Lei\\r"
    >>> out = next(a.convert(msg, source="x.hl7"))
    >>> [r["resourceType"] for r in out.resources]
    ['Patient']
    """

    format = "hl7v2"

    def __init__(self, institution: str = "", *, default_tz: str = "+08:00") -> None:
        self.institution = institution
        self.default_tz = default_tz
        self.patients = PatientMemo()

    def convert(self, data: bytes, *, source: str) -> Iterator[Outcome]:
        for raw in split_messages(data):
            yield self.convert_one(raw, source=f"{source}#{raw.number}")

    def convert_one(self, raw: RawMessage, *, source: str) -> Outcome:
        """Convert one message already cut from its file or frame."""
        try:
            text = decode_message(raw)
        except DecodeError as exc:
            return Rejected(source, raw.data, exc.reason, exc.location)
        try:
            msg = V2Message(text.text)
        except Exception as exc:
            log.debug("parse failure %s: %s", source, type(exc).__name__)
            return Rejected(source, raw.data, "message cannot be parsed as HL7 v2", "MSH")
        facility = msg.sending_facility or msg.sending_app
        ctx = Ctx(
            f"{self.institution}/{facility}",
            self.default_tz,
            list(text.notes),
            patients=self.patients,
        )
        try:
            resources = map_message(msg, ctx)
        except MappingError as exc:
            return Rejected(source, raw.data, exc.reason, exc.location)
        except (IndexError, ValueError, TypeError, KeyError) as exc:
            # an unexpected shape we did not foresee: quarantined, never a crash
            log.debug("mapping failure %s: %s", source, type(exc).__name__)
            return Rejected(
                source, raw.data, f"unexpected message structure ({type(exc).__name__})", "MSH-9"
            )
        if not msg.control_id:
            ctx.notes.append("MSH-10: no message control id")
        return Converted(source, [prune(r) for r in resources], ctx.notes)

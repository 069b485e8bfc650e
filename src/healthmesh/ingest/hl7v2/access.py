"""Read access to an HL7 v2 message: segments in order, fields by 1-based number,
repetitions, components and sub-components, with escape sequences resolved.

Why a hand-written splitter: python-hl7's ``hl7.parse`` builds a container object for every
field, repetition and component up front; on the FHIR-Converter sample messages that cost
20-70 ms per message here, an order of magnitude over our budget (2,000 messages/s). A
mapper reads a few dozen fields, so we split lazily with ``str.split`` (segment on first
access, a field when asked). python-hl7 still does what it does well: escape sequences
(\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\ ...), via ``Message.unescape``, and MLLP framing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import Any

import hl7


@lru_cache(maxsize=16)
def _unescaper(encoding_chars: str) -> Any:
    """A python-hl7 message carrying the separators, used for ``unescape``."""
    return hl7.parse(f"MSH|{encoding_chars}|")


class Rep:
    """One repetition of a field: its components as written (sub-components are split when
    one is asked for: most components have none)."""

    __slots__ = ("_msg", "comps")

    def __init__(self, msg: V2Message, comps: list[str]) -> None:
        self._msg = msg
        self.comps = comps

    def c(self, i: int, s: int = 1) -> str:
        """Component ``i``, sub-component ``s`` (1-based), unescaped; "" when absent."""
        comps = self.comps
        if i > len(comps):
            return ""
        value = comps[i - 1]
        msg = self._msg
        if msg.sub_sep in value:
            subs = value.split(msg.sub_sep)
            if s > len(subs):
                return ""
            value = subs[s - 1]
        elif s > 1:
            return ""
        return msg.unescape(value) if msg.esc in value else value

    def subs(self, i: int) -> list[str]:
        """All sub-components of component ``i``, unescaped."""
        if i > len(self.comps):
            return []
        msg = self._msg
        return [msg.unescape(x) for x in self.comps[i - 1].split(msg.sub_sep)]

    def empty(self) -> bool:
        sub_sep = self._msg.sub_sep
        return not any(comp.replace(sub_sep, "") for comp in self.comps)


class Segment:
    """One segment: its name and fields (``field(n)`` is HL7's 1-based field n)."""

    __slots__ = ("_cache", "_fields", "_msg", "_text", "name", "position")

    def __init__(self, msg: V2Message, text: str, position: int) -> None:
        self._msg = msg
        self._cache: dict[int, list[Rep]] = {}
        self._text = text
        self._fields: list[str] | None = None  # split on first access
        head = text[:3]
        if text[3:4] == msg.field_sep and head.isalnum():
            self.name = head  # the usual three-letter name, without a split
        else:
            self.name = text.split(msg.field_sep, 1)[0].strip()
        self.position = position  # 1-based position of the segment in the message

    @property
    def text(self) -> str:
        """The segment as written."""
        return self._text

    @property
    def separators(self) -> str:
        """The message's field separator and encoding characters (MSH-1 and MSH-2)."""
        return self._msg.field_sep + self._msg._enc

    def _split(self) -> list[str]:
        fields = self._text.split(self._msg.field_sep)
        if self.name == "MSH":
            # MSH-1 is the field separator itself, so MSH-n sits at index n-1
            fields.insert(1, self._msg.field_sep)
        self._fields = fields
        return fields

    def raw(self, n: int) -> str:
        """Field ``n`` as written (escapes and separators untouched)."""
        fields = self._fields
        if fields is None:
            fields = self._split()
        return fields[n] if n < len(fields) else ""

    def reps(self, n: int) -> list[Rep]:
        """Non-empty repetitions of field ``n`` (split once, then cached)."""
        cached = self._cache.get(n)
        if cached is not None:
            return cached
        raw = self.raw(n)
        msg = self._msg
        out: list[Rep] = []
        if not raw:
            pass
        elif self.name == "MSH" and n <= 2:
            out = [Rep(msg, [raw])]
        else:
            blank = msg.comp_sep + msg.sub_sep
            comp_sep = msg.comp_sep
            for rep in raw.split(msg.rep_sep) if msg.rep_sep in raw else (raw,):
                if not rep.strip(blank):
                    continue
                out.append(Rep(msg, rep.split(comp_sep) if comp_sep in rep else [rep]))
        self._cache[n] = out
        return out

    def rep(self, n: int) -> Rep | None:
        """The first non-empty repetition of field ``n``."""
        reps = self._cache.get(n)
        if reps is None:
            reps = self.reps(n)
        return reps[0] if reps else None

    def v(self, n: int, c: int = 1, s: int = 1) -> str:
        """Field ``n``, component ``c``, sub-component ``s`` of the first repetition."""
        reps = self._cache.get(n)
        if reps is None:
            # most fields a mapper reads are empty or one plain value: answer those from the
            # raw text without building repetitions
            fields = self._fields
            if fields is None:
                fields = self._split()
            raw = fields[n] if n < len(fields) else ""
            if not raw:
                return ""
            if not self._msg.special.search(raw):
                return raw if c == 1 and s == 1 else ""
            reps = self.reps(n)
        return reps[0].c(c, s) if reps else ""


class V2Message:
    """A message split into segments. ``segments`` keeps the order (groups such as OBR + OBX
    rely on it).

    >>> m = V2Message("MSH|^~\\\\&|HIS|H1|||20240101||ADT^A01|1|P|2.5\\rPID|1||M1^^^H1^MR")
    >>> m.type, m.event, m.first("PID").v(3, 1), m.first("PID").v(3, 4)
    ('ADT', 'A01', 'M1', 'H1')
    """

    def __init__(self, text: str) -> None:
        if not text.startswith("MSH") or len(text) < 8:
            raise ValueError("not an HL7 v2 message")
        self.field_sep = text[3]
        enc = text[4:8].split(self.field_sep, 1)[0]
        self.comp_sep = enc[0] if len(enc) > 0 else "^"
        self.rep_sep = enc[1] if len(enc) > 1 else "~"
        self.esc = enc[2] if len(enc) > 2 else "\\"
        self.sub_sep = enc[3] if len(enc) > 3 else "&"
        self._enc = enc
        #: any separator or the escape character: a field without them is one plain value
        self.special = re.compile(
            "[" + re.escape(self.comp_sep + self.rep_sep + self.esc + self.sub_sep) + "]"
        )
        self._lines = [x for x in text.split("\r") if x.strip()]
        self._segments: list[Segment] | None = None  # built when a map asks (not for MSH-9)
        msh = Segment(self, self._lines[0], 1)
        self.msh = msh
        self.type = msh.v(9, 1).upper()
        self.event = msh.v(9, 2).upper() or msh.v(9, 1)[4:].upper()
        self.structure = msh.v(9, 3).upper()
        self.control_id = msh.v(10)
        self.version = msh.v(12)
        self.sending_app = msh.v(3) or msh.v(3, 2)
        self.sending_facility = msh.v(4) or msh.v(4, 2)

    @property
    def segments(self) -> list[Segment]:
        """All segments in message order."""
        segs = self._segments
        if segs is None:
            segs = [self.msh]
            segs.extend(Segment(self, line, i) for i, line in enumerate(self._lines[1:], 2))
            self._segments = segs
        return segs

    def unescape(self, value: str) -> str:
        if self.esc not in value:
            return value
        return str(_unescaper(self._enc).unescape(value))

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def first(self, name: str) -> Segment | None:
        for s in self.segments:
            if s.name == name:
                return s
        return None

    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    def groups(
        self, head: str, members: Sequence[str], stop: Sequence[str] = ()
    ) -> Iterator[tuple[Segment, list[Segment]]]:
        """Each ``head`` segment with the ``members`` segments that follow it (until the next
        head or a ``stop`` segment), e.g. OBR with its OBX and NTE."""
        current: Segment | None = None
        items: list[Segment] = []
        for seg in self.segments:
            if seg.name == head:
                if current is not None:
                    yield current, items
                current, items = seg, []
            elif current is not None and seg.name in stop:
                yield current, items
                current, items = None, []
            elif current is not None and seg.name in members:
                items.append(seg)
        if current is not None:
            yield current, items

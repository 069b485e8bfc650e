"""Read access to a parsed HL7 v2 message: segments in order, fields by 1-based number,
repetitions, components and sub-components, with escape sequences resolved.

Parsing is python-hl7's (``hl7.parse``): it is small, fast (plain string splitting, no
schema), keeps Z-segments and unknown segments as they are, and implements the escape
sequences (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh\\). hl7apy validates against message
structures, which real feeds break constantly, and is several times slower; we need
tolerance and speed. python-hl7's containers are irregular (a field with no separators is a
list of one string, a repetition without components a list of strings), so this module
normalises them into ``Rep`` objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import hl7


class Rep:
    """One repetition of a field: its components, each a list of sub-components."""

    __slots__ = ("_msg", "comps")

    def __init__(self, msg: V2Message, comps: list[list[str]]) -> None:
        self._msg = msg
        self.comps = comps

    def c(self, i: int, s: int = 1) -> str:
        """Component ``i``, sub-component ``s`` (1-based), unescaped; "" when absent."""
        comps = self.comps
        if i > len(comps):
            return ""
        subs = comps[i - 1]
        if s > len(subs):
            return ""
        return self._msg.unescape(subs[s - 1])

    def subs(self, i: int) -> list[str]:
        """All sub-components of component ``i``, unescaped."""
        if i > len(self.comps):
            return []
        return [self._msg.unescape(x) for x in self.comps[i - 1]]

    def empty(self) -> bool:
        return not any(x for comp in self.comps for x in comp)


class Segment:
    """One segment: its name and fields (``field(n)`` is HL7's 1-based field n)."""

    __slots__ = ("_msg", "_raw", "name", "position")

    def __init__(self, msg: V2Message, raw: Any, position: int) -> None:
        self._msg = msg
        self._raw = raw
        self.name = str(raw[0][0]) if raw and raw[0] else ""
        self.position = position  # 1-based position of the segment in the message

    def _field(self, n: int) -> Any:
        # python-hl7 keeps MSH-1 (the separator) at index 1 and MSH-2 at index 2, so the
        # index is the field number for every segment.
        raw = self._raw
        return raw[n] if n < len(raw) else None

    def reps(self, n: int) -> list[Rep]:
        """Non-empty repetitions of field ``n``."""
        raw = self._field(n)
        if not raw:
            return []
        msg = self._msg
        if isinstance(raw[0], str):
            return [Rep(msg, [[raw[0]]])] if raw[0] else []
        out = []
        for rep in raw:
            comps = [[c] if isinstance(c, str) else list(c) for c in rep]
            r = Rep(msg, comps)
            if not r.empty():
                out.append(r)
        return out

    def rep(self, n: int) -> Rep | None:
        """The first non-empty repetition of field ``n``."""
        reps = self.reps(n)
        return reps[0] if reps else None

    def v(self, n: int, c: int = 1, s: int = 1) -> str:
        """Field ``n``, component ``c``, sub-component ``s`` of the first repetition."""
        r = self.rep(n)
        return r.c(c, s) if r is not None else ""


class V2Message:
    """A parsed message. ``segments`` keeps the order (groups such as OBR + OBX rely on it).

    >>> m = V2Message("MSH|^~\\\\&|HIS|H1|||20240101||ADT^A01|1|P|2.5\\rPID|1||M1^^^H1^MR")
    >>> m.type, m.event, m.first("PID").v(3, 1)
    ('ADT', 'A01', 'M1')
    """

    def __init__(self, text: str) -> None:
        self._parsed = hl7.parse(text)
        self._esc = text[6] if len(text) > 6 else "\\"
        self.segments = [Segment(self, raw, i + 1) for i, raw in enumerate(self._parsed)]
        msh = self.segments[0]
        self.msh = msh
        self.type = msh.v(9, 1).upper()
        self.event = msh.v(9, 2).upper() or msh.v(9, 1)[4:].upper()
        self.structure = msh.v(9, 3).upper()
        self.control_id = msh.v(10)
        self.version = msh.v(12)
        self.sending_app = msh.v(3) or msh.v(3, 2)
        self.sending_facility = msh.v(4) or msh.v(4, 2)

    def unescape(self, value: str) -> str:
        if self._esc not in value:
            return value
        return str(self._parsed.unescape(value))

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    def first(self, name: str) -> Segment | None:
        for s in self.segments:
            if s.name == name:
                return s
        return None

    def names(self) -> list[str]:
        return [s.name for s in self.segments]

    def groups(self, head: str, members: Sequence[str], stop: Sequence[str] = ()) -> Iterator[
        tuple[Segment, list[Segment]]
    ]:
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

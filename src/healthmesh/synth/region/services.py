"""Which institution a person goes to: the one in their district, else a fixed other one."""

from __future__ import annotations

import random
import zlib

from healthmesh.synth.region.config import Institution


class Services:
    """Institutions of each kind and each district's preferred one."""

    def __init__(self, insts: list[Institution]) -> None:
        self.by_kind: dict[str, list[Institution]] = {}
        for inst in insts:
            self.by_kind.setdefault(inst.kind, []).append(inst)

    def has(self, kind: str) -> bool:
        """Whether the region has institutions of ``kind``."""
        return bool(self.by_kind.get(kind))

    def home(self, kind: str, district: str, pid: str) -> Institution:
        """The usual institution of ``kind`` for a person: in their district when one is."""
        options = self.by_kind[kind]
        local = [i for i in options if i.district == district]
        pool = local or options
        return pool[zlib.crc32(pid.encode()) % len(pool)]

    def pick(self, kind: str, district: str, pid: str, rng: random.Random) -> Institution:
        """Mostly the usual institution; sometimes another one (people shop around)."""
        if rng.random() < 0.8:
            return self.home(kind, district, pid)
        return rng.choice(self.by_kind[kind])

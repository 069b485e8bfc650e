"""Configuration of a synthetic region: how many people and institutions, which days."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from dataclasses import dataclass, field

from healthmesh.errors import InvalidInput


@dataclass(frozen=True)
class Institution:
    """One institution of the region and the native format it exports."""

    id: str  # "H01", "C01", "CDC01", "P01"
    kind: str  # "hospital", "clinic", "cdc", "pharmacy"
    name: str
    district: str  # GB/T 2260 code of its location
    encoding: str = "utf-8"  # text encoding of its exports


@dataclass(frozen=True)
class RegionConfig:
    """Parameters of ``healthmesh synth region``.

    >>> RegionConfig(seed=1, people=100).days
    730
    """

    seed: int = 42
    people: int = 20_000
    hospitals: int = 3
    clinics: int = 5
    cdc: int = 1
    pharmacies: int = 2
    days: int = 730
    start: dt.date = field(default=dt.date(2024, 1, 1))
    opt_out_rate: float = 0.03
    outbreaks: int = 4

    def __post_init__(self) -> None:
        if self.people < 1 or self.days < 1:
            raise InvalidInput("people and days must be positive")
        if self.hospitals < 1 or self.clinics < 1 or self.pharmacies < 0 or self.cdc < 0:
            raise InvalidInput("a region needs at least one hospital and one clinic")
        if max(self.hospitals, self.clinics, self.pharmacies, self.cdc) > 99:
            raise InvalidInput("at most 99 institutions of each kind")

    @property
    def end(self) -> dt.date:
        """The last simulated day (inclusive)."""
        return self.start + dt.timedelta(days=self.days - 1)

    def rng(self, stream: str) -> random.Random:
        """An independent random stream per purpose, stable for a seed."""
        digest = hashlib.sha256(f"{self.seed}:{stream}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))


def institutions(config: RegionConfig, districts: list[str]) -> list[Institution]:
    """The institutions of the region; hospital H02 (and every third after) exports GB18030."""
    out: list[Institution] = []
    for i in range(config.hospitals):
        enc = "gb18030" if i % 3 == 1 else "utf-8"
        out.append(Institution(f"H{i + 1:02d}", "hospital", f"区域第{i + 1}人民医院",
                               districts[i % len(districts)], enc))
    for i in range(config.clinics):
        enc = "gb18030" if i % 4 == 3 else "utf-8"
        out.append(Institution(f"C{i + 1:02d}", "clinic", f"社区卫生服务中心{i + 1}",
                               districts[i % len(districts)], enc))
    for i in range(config.cdc):
        out.append(Institution(f"CDC{i + 1:02d}", "cdc", f"区域疾病预防控制中心{i + 1}",
                               districts[0]))
    for i in range(config.pharmacies):
        out.append(Institution(f"P{i + 1:02d}", "pharmacy", f"连锁药房{i + 1}",
                               districts[(i + 2) % len(districts)]))
    return out

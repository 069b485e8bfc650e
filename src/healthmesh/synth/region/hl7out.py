"""Hospital exports: HL7 v2.5 ADT^A01/A03/A04/A08, ORU^R01 and RDE^O11 message files (drugs in
ATC, HL7 table 0396 code ``WC``; A08 when a moved patient's address is updated, A40 when a
duplicate number is merged).

One file per message type and month, segments ended by CR, messages concatenated (no batch
envelope), in the hospital's encoding (UTF-8, or GB18030 with MSH-18 ``GB 18030-2000``).
Identifiers: PID-3 repeats the MRN (assigning authority = hospital id, type MR) and the
resident identity number (authority CHN, type NNCHN); hospital H02 codes its results with
local codes (99HIS) and LOINC as the alternate coding; drugs without an ATC code are sent
with the local drug code (99YP).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from healthmesh.ingest.terminology.codes import ATC_CODES, ICD10_CODES, LAB_CODES
from healthmesh.synth.region.config import Institution
from healthmesh.synth.region.events import Visit
from healthmesh.synth.region.localcodes import DRUGS, H02_LAB
from healthmesh.synth.region.variants import LocalRecord

_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\"))
_CLASS = {"fever": "E", "acute": "O", "chronic": "O", "inpatient": "I"}
_WARD = {
    "fever": "FRK^^^{h}^^^^^发热门诊",
    "acute": "MZ^^^{h}^^^^^普通门诊",
    "chronic": "MBK^^^{h}^^^^^慢病门诊",
    "inpatient": "HXK^^^{h}^^^^^呼吸内科病房",
}
_SEX = {"1": "M", "2": "F"}
#: coded results (SNOMED CT) of the rapid antigen test and smoking status
_CODED = {
    "POS": "260373001^Detected^SCT",
    "NEG": "260415000^Not detected^SCT",
    "SMOKER": "77176002^Smoker^SCT",
    "NONSMOKER": "8392000^Non-smoker^SCT",
}
_FLAGS = {
    "8480-6": (90, 139),
    "8462-4": (60, 89),
    "14771-0": (3.9, 6.1),
    "4548-4": (4.0, 6.0),
    "6690-2": (3.5, 9.5),
    "1988-5": (0, 10),
    "14647-2": (2.8, 5.2),
    "14682-9": (57, 111),
}


def esc(value: str) -> str:
    """Escape HL7 delimiters in a field value.

    >>> esc("a|b^c")
    'a\\\\F\\\\b\\\\S\\\\c'
    """
    for raw, coded in _ESCAPES:
        value = value.replace(raw, coded)
    return value


def ts(moment: dt.datetime | dt.date) -> str:
    """HL7 DTM of a datetime (to the second) or a date."""
    if isinstance(moment, dt.datetime):
        return moment.strftime("%Y%m%d%H%M%S")
    return moment.strftime("%Y%m%d")


class Hl7Writer:
    """Accumulates one hospital's messages by (type, month) and writes them out."""

    def __init__(self, inst: Institution) -> None:
        self.inst = inst
        self.files: dict[tuple[str, str], list[str]] = {}
        self.count = 0
        self.charset = "GB 18030-2000" if inst.encoding == "gb18030" else "UNICODE UTF-8"

    def _msh(self, at: dt.datetime, kind: str, structure: str) -> str:
        self.count += 1
        return (
            f"MSH|^~\\&|HIS|{self.inst.id}|HEALTHMESH|{self.inst.id}|{ts(at)}||{kind}^{structure}"
            f"|{self.inst.id}{self.count:09d}|P|2.5|||AL|NE|CHN|{self.charset}"
        )

    def _pid(self, rec: LocalRecord) -> str:
        ids = f"{rec.local_id}^^^{self.inst.id}^MR"
        if rec.id_number:
            ids += f"~{rec.id_number}^^^CHN^NNCHN"
        if rec.pinyin_only:
            name = f"{rec.surname_py.upper()}^{rec.given_py.upper()}^^^^^L"
        else:
            name = f"{esc(rec.surname)}^{esc(rec.given)}^^^^^L"
            if self.inst.id != "H02":
                name += f"~{rec.surname_py.upper()}^{rec.given_py.upper()}^^^^^A"
        addr = f"{esc(rec.address)}^^成都市^四川省^^CHN^H^^{rec.district}"
        phone = f"^PRN^CP^^^^^^^^^{rec.phone}" if rec.phone else ""
        eth = rec.person.ethnicity
        return (
            f"PID|1||{ids}||{name}||{ts(rec.birth)}|{_SEX[rec.sex]}|||{addr}||{phone}"
            f"||||||||{eth}^^GB3304"
        )

    def _pv1(self, v: Visit, visit_no: str, discharge: dt.datetime | None) -> str:
        ward = _WARD[v.kind].format(h=self.inst.id)
        end = ts(discharge) if discharge else ""
        return (
            f"PV1|1|{_CLASS[v.kind]}|{ward}||||||||||||||||{visit_no}"
            + "|" * 25
            + f"{ts(v.start)}|{end}"
        )

    def _add(self, kind: str, at: dt.datetime, message: list[str]) -> None:
        key = (kind, at.strftime("%Y-%m"))
        self.files.setdefault(key, []).append("\r".join(message) + "\r")

    def update(self, rec: LocalRecord, at: dt.datetime) -> None:
        """ADT^A08: the patient's registration changed (a new address after a move)."""
        self._add(
            "adt",
            at,
            [self._msh(at, "ADT^A08", "ADT_A01"), f"EVN|A08|{ts(at)}", self._pid(rec), "PV1|1|N"],
        )

    def merge(self, survivor: LocalRecord, prior: LocalRecord, at: dt.datetime) -> None:
        """ADT^A40: merge the duplicate number ``prior`` into ``survivor``."""
        mrg = f"MRG|{prior.local_id}^^^{self.inst.id}^MR"
        self._add(
            "adt",
            at,
            [self._msh(at, "ADT^A40", "ADT_A39"), f"EVN|A40|{ts(at)}", self._pid(survivor), mrg],
        )

    def visit(self, v: Visit, rec: LocalRecord, visit_no: str) -> None:
        """Write the messages of one visit: ADT (A04, or A01+A03), ORU, RDE."""
        pid = self._pid(rec)
        dg1 = [
            f"DG1|{i + 1}||{code}^{ICD10_CODES[code]}^I10||{ts(v.start)}|F"
            for i, code in enumerate(v.diagnoses)
        ]
        if v.kind == "inpatient":
            out = v.start + dt.timedelta(days=v.length_of_stay, hours=2)
            pv1 = self._pv1(v, visit_no, None)
            self._add(
                "adt",
                v.start,
                [
                    self._msh(v.start, "ADT^A01", "ADT_A01"),
                    f"EVN|A01|{ts(v.start)}",
                    pid,
                    pv1,
                    *dg1,
                ],
            )
            pv1_out = self._pv1(v, visit_no, out)
            self._add(
                "adt",
                out,
                [self._msh(out, "ADT^A03", "ADT_A03"), f"EVN|A03|{ts(out)}", pid, pv1_out, *dg1],
            )
        else:
            pv1 = self._pv1(v, visit_no, None)
            self._add(
                "adt",
                v.start,
                [
                    self._msh(v.start, "ADT^A04", "ADT_A01"),
                    f"EVN|A04|{ts(v.start)}",
                    pid,
                    pv1,
                    *dg1,
                ],
            )
        if v.results:
            at = v.start + dt.timedelta(hours=1)
            order = f"{visit_no}-L"
            segs = [
                self._msh(at, "ORU^R01", "ORU_R01"),
                pid,
                pv1,
                f"ORC|RE|{order}|{order}",
                f"OBR|1|{order}|{order}|"
                f"{self._code(v.results[0].loinc)}|||{ts(v.start)}||||||||||||||||||F",
            ]
            for i, r in enumerate(v.results):
                segs.append(self._obx(i + 1, r.loinc, r.value, r.unit, at))
            self._add("oru", at, segs)
        if v.prescriptions:
            segs = [self._msh(v.start, "RDE^O11", "RDE_O11"), pid, pv1]
            for i, p in enumerate(v.prescriptions):
                order = f"{visit_no}-M{i + 1}"
                code = p.drug
                if code in ATC_CODES:
                    give = f"{code}^{esc(DRUGS[code][1])}^WC"
                else:
                    give = f"{DRUGS[code][0]}^{esc(DRUGS[code][1])}^99YP"
                freq = {1: "QD", 2: "BID", 3: "TID"}.get(p.per_day, "QD")
                segs += [
                    f"ORC|NW|{order}|||||||{ts(v.start)}",
                    f"RXE|1^{freq}^^{ts(v.start)}|{give}|{p.dose:g}||{p.unit}|TAB"
                    f"||||{p.per_day * p.days}|TAB",
                    "RXR|PO",
                ]
            self._add("rde", v.start, segs)

    def _code(self, loinc: str) -> str:
        display = esc(LAB_CODES[loinc].display)
        if self.inst.id == "H02" and loinc in H02_LAB:
            local, name = H02_LAB[loinc]
            return f"{local}^{name}^99HIS^{loinc}^{display}^LN"
        return f"{loinc}^{display}^LN"

    def _obx(self, n: int, loinc: str, value: float | str, unit: str, at: dt.datetime) -> str:
        code = self._code(loinc)
        if isinstance(value, str):
            coded = _CODED[value]
            flag = "A" if value == "POS" else "N" if value == "NEG" else ""
            return f"OBX|{n}|CWE|{code}||{coded}||||{flag}|||F|||{ts(at)}"
        low, high = _FLAGS.get(loinc, (None, None))
        ref, flag = "", ""
        if low is not None and high is not None:
            ref = f"{low:g}-{high:g}"
            flag = "H" if value > high else "L" if value < low else "N"
        return f"OBX|{n}|NM|{code}||{value:g}|{unit}^^UCUM|{ref}|{flag}|||F|||{ts(at)}"

    def write(self, folder: Path) -> list[Path]:
        """Write the message files; returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for (kind, month), messages in sorted(self.files.items()):
            path = folder / f"{kind}_{month}.hl7"
            path.write_bytes("".join(messages).encode(self.inst.encoding))
            paths.append(path)
        return paths

"""Clinic, pharmacy and CDC exports as CSV files with Chinese headers, as their systems write.

Clinics write ``visits.csv`` (one row per visit, diagnoses ``;``-separated) and
``prescriptions.csv`` (one row per drug), every fifth clinic as ``.xlsx`` workbooks instead;
half of them write dates as ``2024/01/31`` and sex as 男/女, the other half ``2024-01-31`` and
GB/T 2261.1 digits; every fourth uses GB18030. Pharmacies write ``sales.csv``; the CDC writes
``case_reports.csv`` (influenza report cards).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from healthmesh.synth.region.config import Institution
from healthmesh.synth.region.events import CaseReport, Sale, Visit
from healthmesh.synth.region.localcodes import CLINIC_DX, DRUGS
from healthmesh.synth.region.variants import LocalRecord
from healthmesh.synth.region.xlsx import write_xlsx

VISIT_HEADER = (
    "就诊流水号",
    "患者编号",
    "姓名",
    "性别",
    "出生日期",
    "身份证号",
    "民族",
    "联系电话",
    "现住址",
    "就诊时间",
    "就诊类型",
    "诊断编码",
    "诊断名称",
    "体温",
    "收缩压",
    "舒张压",
    "空腹血糖",
)
RX_HEADER = (
    "处方明细号",
    "就诊流水号",
    "患者编号",
    "开方时间",
    "药品编码",
    "药品名称",
    "单次剂量",
    "剂量单位",
    "每日次数",
    "用药天数",
)
SALE_HEADER = (
    "销售单号",
    "销售时间",
    "门店编码",
    "商品编码",
    "商品名称",
    "数量",
    "会员卡号",
    "会员姓名",
    "会员电话",
)
REPORT_HEADER = (
    "报告卡编号",
    "患者姓名",
    "性别",
    "出生日期",
    "有效证件号",
    "现住址",
    "现住址国标编码",
    "联系电话",
    "发病日期",
    "诊断日期",
    "疾病编码",
    "疾病名称",
    "报告单位",
)
_KIND = {"fever": "发热门诊", "acute": "普通门诊", "chronic": "慢病随访", "inpatient": "住院"}
_MEASURES = ("8310-5", "8480-6", "8462-4", "14771-0")


class Table:
    """An in-memory table written as CSV (institution's encoding) or as an Excel workbook."""

    def __init__(self, header: tuple[str, ...]) -> None:
        self.header = list(header)
        self.data: list[list[str]] = []

    @property
    def rows(self) -> int:
        """Data rows so far."""
        return len(self.data)

    def add(self, row: list[str]) -> None:
        self.data.append(row)

    def write(self, path: Path, encoding: str) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".xlsx":
            return self._write_xlsx(path)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(self.header)
        writer.writerows(self.data)
        enc = "utf-8-sig" if encoding == "utf-8" else encoding
        path.write_bytes(buffer.getvalue().encode(enc))
        return path

    def _write_xlsx(self, path: Path) -> Path:
        return write_xlsx(path, [self.header, *self.data])


class ClinicWriter:
    """One clinic's two export tables."""

    def __init__(self, inst: Institution, index: int) -> None:
        self.inst = inst
        self.slash = index % 2 == 0
        self.suffix = ".xlsx" if index % 5 == 4 else ".csv"  # every fifth clinic uses Excel
        self.visits = Table(VISIT_HEADER)
        self.rx = Table(RX_HEADER)

    def _date(self, text: str) -> str:
        return text.replace("-", "/") if self.slash else text

    def visit(self, v: Visit, rec: LocalRecord, visit_no: str) -> None:
        """Add one visit and its prescriptions."""
        sex = ("男" if rec.sex == "1" else "女") if self.slash else rec.sex
        values = {r.loinc: r.value for r in v.results}
        measures = []
        for code in _MEASURES:
            value = values.get(code)
            measures.append(
                ""
                if value is None
                else f"{value:g}"
                if isinstance(value, float | int)
                else str(value)
            )
        when = self._date(v.start.strftime("%Y-%m-%d %H:%M"))
        self.visits.add(
            [
                visit_no,
                rec.local_id,
                rec.name,
                sex,
                self._date(rec.birth.isoformat()),
                rec.id_number or "",
                rec.person.ethnicity,
                rec.phone or "",
                rec.address,
                when,
                _KIND[v.kind],
                ";".join(CLINIC_DX[d][0] for d in v.diagnoses),
                ";".join(CLINIC_DX[d][1] for d in v.diagnoses),
                *measures,
            ]
        )
        for i, p in enumerate(v.prescriptions):
            code, name = DRUGS[p.drug]
            self.rx.add(
                [
                    f"{visit_no}-{i + 1}",
                    visit_no,
                    rec.local_id,
                    when,
                    code,
                    name,
                    f"{p.dose:g}",
                    p.unit,
                    str(p.per_day),
                    str(p.days),
                ]
            )

    def write(self, folder: Path) -> list[Path]:
        return [
            self.visits.write(folder / f"visits{self.suffix}", self.inst.encoding),
            self.rx.write(folder / f"prescriptions{self.suffix}", self.inst.encoding),
        ]


class PharmacyWriter:
    """One pharmacy chain's sales table."""

    def __init__(self, inst: Institution) -> None:
        self.inst = inst
        self.sales = Table(SALE_HEADER)

    def sale(self, s: Sale, member: LocalRecord | None) -> None:
        code, name = DRUGS[s.drug]
        self.sales.add(
            [
                f"{self.inst.id}-S{self.sales.rows + 1:08d}",
                s.at.strftime("%Y-%m-%d %H:%M:%S"),
                self.inst.id,
                code,
                name,
                str(s.quantity),
                member.local_id if member else "",
                member.name if member else "",
                (member.phone or "") if member else "",
            ]
        )

    def write(self, folder: Path) -> list[Path]:
        return [self.sales.write(folder / "sales.csv", self.inst.encoding)]


class CdcWriter:
    """The CDC's notifiable-disease report cards."""

    def __init__(self, inst: Institution) -> None:
        self.inst = inst
        self.table = Table(REPORT_HEADER)

    def report(self, r: CaseReport, rec: LocalRecord, card: str) -> None:
        from healthmesh.ingest.terminology.codes import ICD10_CODES

        self.table.add(
            [
                card,
                rec.name,
                rec.sex,
                rec.birth.isoformat(),
                rec.id_number or "",
                rec.address,
                rec.district,
                rec.phone or "",
                r.onset.isoformat(),
                r.diagnosed.isoformat(),
                r.icd10,
                ICD10_CODES[r.icd10],
                r.reporter,
            ]
        )

    def write(self, folder: Path) -> list[Path]:
        return [self.table.write(folder / "case_reports.csv", self.inst.encoding)]

"""The DICOM adapter: one file in, an ImagingStudy and its Patient out (headers only).

pydicom reads the header (``stop_before_pixels``) and decodes person names under the file's
Specific Character Set (ISO 2022 escapes, UTF-8, GB18030). Files without the File Meta header
are read again with ``force=True`` (and, if no study is found, from one to three bytes later, for
files with stray leading bytes, noted) and converted when they name a study; anything else that
pydicom cannot parse, or that has no Study Instance UID, is rejected with a reason.
Study Instance UIDs are global, so the ImagingStudy id is derived from the UID alone.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from healthmesh.ingest.adapter import Converted, Outcome, Rejected, deterministic_id

DCM = "http://dicom.nema.org/resources/ontology/DCM"
_SEX = {"M": "male", "F": "female", "O": "other"}
_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def _date(value: str) -> str | None:
    digits = value.replace(".", "").replace("-", "")[:8]
    if len(digits) != 8 or not digits.isdigit():
        return None
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"


def _datetime(date: str, time: str, tz: str) -> str | None:
    day = _date(date)
    if day is None:
        return None
    clock = time.split(".")[0].replace(":", "")
    if len(clock) >= 4 and clock[:6].isdigit():
        clock = (clock + "00")[:6]
        return f"{day}T{clock[:2]}:{clock[2:4]}:{clock[4:6]}{tz}"
    return day


def _names(ds: Dataset) -> list[dict[str, Any]]:
    """HumanNames of the PN groups, marked ideographic (IDE), alphabetic (ABC) or phonetic
    (SYL) with the ISO 21090 representation extension, as the HL7 v2 adapter does."""
    pn = ds.get("PatientName")
    if pn is None or not str(pn).strip():
        return []
    out: list[dict[str, Any]] = []
    groups = [
        ("IDE", getattr(pn, "ideographic", "")),
        ("ABC", getattr(pn, "alphabetic", "")),
        ("SYL", getattr(pn, "phonetic", "")),
    ]
    for representation, text in groups:
        text = str(text or "").strip()
        if not text:
            continue
        family, _, rest = text.partition("^")
        given = [g for g in rest.split("^")[:2] if g]
        glue = "" if representation == "IDE" else " "
        joined = glue.join([family, *given])
        name: dict[str, Any] = {
            "extension": [{"url": _REPRESENTATION, "valueCode": representation}],
            "text": joined,
        }
        if not out:
            name["use"] = "official"
        if family:
            name["family"] = family
        if given:
            name["given"] = given
        out.append(name)
    return out


class DicomAdapter:
    """Adapter for DICOM Part 10 files (one file = one record).

    >>> DicomAdapter().format
    'dicom'
    """

    format = "dicom"

    def __init__(self, *, institution: str = "dicom", timezone: str = "+08:00") -> None:
        self.institution = institution
        self.timezone = timezone

    def _read(self, data: bytes) -> tuple[Dataset, list[str]]:
        notes: list[str] = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds: Dataset
            try:
                ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
            except InvalidDicomError:
                ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
                notes.append("no DICOM File Meta header; read without it")
                if "StudyInstanceUID" not in ds:
                    ds = self._resync(data, ds, notes)
            ds.decode()
        notes += sorted({f"reader warning: {type(w.message).__name__}" for w in caught})
        return ds, notes

    @staticmethod
    def _resync(data: bytes, ds: Dataset, notes: list[str]) -> Dataset:
        """A headerless file whose dataset starts a few bytes late (stray leading bytes):
        accept the first offset at which the header parses and names a study, noted."""
        for skip in range(1, 4):
            try:
                again = dcmread(io.BytesIO(data[skip:]), stop_before_pixels=True, force=True)
            except Exception:  # noqa: S112 - pydicom raises many types on misaligned bytes
                continue
            if "StudyInstanceUID" in again:
                notes.append(f"skipped {skip} stray leading byte(s) before the dataset")
                return again
        return ds

    def convert(self, data: bytes, *, source: str) -> Iterator[Outcome]:
        """Yield the conversion of one DICOM file."""
        try:
            ds, notes = self._read(data)
            study_uid = _text(ds, "StudyInstanceUID")
        except Exception as exc:  # pydicom raises many types on bad bytes
            yield Rejected(source, data, f"not a readable DICOM file ({type(exc).__name__})",
                           "file")
            return
        if not study_uid:
            forced = any(n.startswith("no DICOM File Meta") for n in notes)
            reason = (
                "not a DICOM Part 10 file: no preamble/File Meta header and no study found"
                if forced
                else "no Study Instance UID (0020,000D)"
            )
            yield Rejected(source, data, reason, "file" if forced else "(0020,000D)")
            return
        try:
            yield Converted(source, self._resources(ds, study_uid), notes)
        except (ValueError, TypeError, AttributeError, UnicodeError) as exc:
            yield Rejected(source, data, f"header cannot be mapped ({type(exc).__name__})", "file")

    def _resources(self, ds: Dataset, study_uid: str) -> list[dict[str, Any]]:
        issuer = _text(ds, "IssuerOfPatientID") or self.institution
        patient_id = _text(ds, "PatientID")
        key = ("PatientID", patient_id) if patient_id else ("Study", study_uid)
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": deterministic_id("Patient", issuer, "dicom", *key),
        }
        if patient_id:
            patient["identifier"] = [
                {"system": f"urn:healthmesh:id:{issuer}", "value": patient_id}
            ]
        names = _names(ds)
        if names:
            patient["name"] = names
        sex = _SEX.get(_text(ds, "PatientSex").upper())
        if sex:
            patient["gender"] = sex
        birth = _date(_text(ds, "PatientBirthDate"))
        if birth:
            patient["birthDate"] = birth
        tz = _text(ds, "TimezoneOffsetFromUTC")
        zone = f"{tz[:3]}:{tz[3:5]}" if len(tz) == 5 and tz[0] in "+-" else self.timezone
        modality = _text(ds, "Modality")
        study: dict[str, Any] = {
            "resourceType": "ImagingStudy",
            "id": deterministic_id("ImagingStudy", "dicom", study_uid),
            "identifier": [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}],
            "status": "available",
            "subject": {"reference": f"Patient/{patient['id']}"},
        }
        accession = _text(ds, "AccessionNumber")
        if accession:
            study["identifier"].append({
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                     "code": "ACSN"}]},
                "value": accession,
            })
        started = _datetime(_text(ds, "StudyDate"), _text(ds, "StudyTime"), zone)
        if started:
            study["started"] = started
        if modality:
            study["modality"] = [{"system": DCM, "code": modality}]
        description = _text(ds, "StudyDescription")
        if description:
            study["description"] = description
        series_uid = _text(ds, "SeriesInstanceUID")
        sop_uid, sop_class = _text(ds, "SOPInstanceUID"), _text(ds, "SOPClassUID")
        if series_uid and modality:
            series: dict[str, Any] = {"uid": series_uid,
                                      "modality": {"system": DCM, "code": modality}}
            number = _text(ds, "SeriesNumber")
            if number.lstrip("-").isdigit():
                series["number"] = int(number)
            body = _text(ds, "BodyPartExamined")
            if body:
                series["bodySite"] = {"system": DCM, "display": body}
            if sop_uid and sop_class:
                instance: dict[str, Any] = {
                    "uid": sop_uid,
                    "sopClass": {"system": "urn:ietf:rfc:3986", "code": f"urn:oid:{sop_class}"},
                }
                inst_no = _text(ds, "InstanceNumber")
                if inst_no.lstrip("-").isdigit():
                    instance["number"] = int(inst_no)
                series["instance"] = [instance]
                series["numberOfInstances"] = 1
            study["series"] = [series]
            study["numberOfSeries"] = 1
            study["numberOfInstances"] = len(series.get("instance", []))
        return [patient, study]

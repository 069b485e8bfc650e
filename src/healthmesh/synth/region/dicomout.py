"""Imaging exports: header-only DICOM files (no pixel data) for the studies hospitals make.

pydicom writes them with a File Meta header, Explicit VR Little Endian, the patient's name in
hanzi under Specific Character Set ``ISO_IR 192`` (UTF-8) or ``GB18030`` (hospital H02).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, ExplicitVRLittleEndian

from healthmesh.synth.region.config import Institution
from healthmesh.synth.region.events import Visit
from healthmesh.synth.region.variants import LocalRecord

SOP_CLASSES = {
    "DX": ("1.2.840.10008.5.1.4.1.1.1.1", "CHEST", "胸部正位片"),
    "CT": ("1.2.840.10008.5.1.4.1.1.2", "CHEST", "胸部CT平扫"),
    "US": ("1.2.840.10008.5.1.4.1.1.6.1", "ABDOMEN", "腹部超声"),
    "MR": ("1.2.840.10008.5.1.4.1.1.4", "LSPINE", "腰椎MR平扫"),
}


def uid(seed: int, *parts: str) -> str:
    """A deterministic DICOM UID under the UUID-derived root 2.25."""
    digest = hashlib.sha256("|".join((str(seed), *parts)).encode()).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


def write_study(
    folder: Path, inst: Institution, v: Visit, rec: LocalRecord, accession: str, seed: int
) -> Path:
    """Write one single-instance study header; returns the file path."""
    modality = v.imaging or "DX"
    sop_class, body_part, description = SOP_CLASSES[modality]
    study = uid(seed, inst.id, accession, "study")
    instance = uid(seed, inst.id, accession, "instance")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "GB18030" if inst.encoding == "gb18030" else "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = instance
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = uid(seed, inst.id, accession, "series")
    ds.StudyDate = v.start.strftime("%Y%m%d")
    ds.StudyTime = v.start.strftime("%H%M%S")
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.InstitutionName = inst.name
    ds.StudyDescription = description
    ds.BodyPartExamined = body_part
    ds.PatientName = (
        f"{rec.surname_py.upper()}^{rec.given_py.upper()}"
        if rec.pinyin_only
        else f"{rec.surname_py.upper()}^{rec.given_py.upper()}={rec.surname}^{rec.given}"
    )
    ds.PatientID = rec.local_id
    ds.IssuerOfPatientID = inst.id
    ds.PatientBirthDate = rec.birth.strftime("%Y%m%d")
    ds.PatientSex = "M" if rec.sex == "1" else "F"
    ds.StudyID = accession[-8:]
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{accession}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path

"""The code tables the region uses: subsets of LOINC, ICD-10, ATC, and GB/T 2261.1, GB 3304.

Licence notes: LOINC codes and names are (c) Regenstrief Institute, used under the LOINC licence
(free use with this notice; see https://loinc.org/license). ICD-10 and ATC codes are WHO
classifications, cited here as identifiers with short English names; the Chinese clinical
version of ICD-10 extends these categories with more digits. GB/T 2261.1-2003 (sex) and
GB 3304-1991 (ethnicity) are Chinese national standards, their code lists are public facts.
The subsets are written by hand (a few dozen codes); the complete systems are licensed
products that a deployment loads separately.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
ATC = "http://www.whocc.no/atc"
UCUM = "http://unitsofmeasure.org"
GB_SEX = "urn:oid:2.16.156.10011.2.3.3.4"
GB_ETHNICITY = "urn:oid:2.16.156.10011.2.3.3.3"
ADMIN_GENDER = "http://hl7.org/fhir/administrative-gender"
RESIDENT_ID = "urn:oid:2.16.156.10011.1.3"
#: the CodeSystem used for a local code that has no standard equivalent (kept, flagged)
LOCAL_BASE = "urn:healthmesh:local"


@dataclass(frozen=True)
class LabCode:
    """A LOINC code with the UCUM units that fit it and a plausible value range."""

    code: str
    display: str
    units: tuple[str, ...]
    low: float
    high: float


LAB_CODES: dict[str, LabCode] = {
    c.code: c
    for c in (
        LabCode("8310-5", "Body temperature", ("Cel",), 30.0, 44.0),
        LabCode("8480-6", "Systolic blood pressure", ("mm[Hg]",), 50.0, 280.0),
        LabCode("8462-4", "Diastolic blood pressure", ("mm[Hg]",), 20.0, 180.0),
        LabCode("29463-7", "Body weight", ("kg",), 0.3, 350.0),
        LabCode("8302-2", "Body height", ("cm",), 30.0, 250.0),
        LabCode("39156-5", "Body mass index (BMI) [Ratio]", ("kg/m2",), 8.0, 80.0),
        LabCode(
            "14771-0", "Fasting glucose [Moles/volume] in Serum or Plasma", ("mmol/L",), 1.0, 40.0
        ),
        LabCode("1558-6", "Fasting glucose [Mass/volume] in Serum or Plasma", ("mg/dL",), 18, 720),
        LabCode(
            "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", ("%",), 3.0, 20.0
        ),
        LabCode("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", ("mmol/L",), 1, 20),
        LabCode("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", ("umol/L",), 10, 2000),
        LabCode(
            "6690-2", "Leukocytes [#/volume] in Blood by Automated count", ("10*9/L",), 0.1, 100
        ),
        LabCode("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", ("mg/L",), 0, 500),
        LabCode(
            "80382-5",
            "Influenza virus A Ag [Presence] in Upper respiratory specimen by Rapid immunoassay",
            (),
            0,
            0,
        ),
        LabCode("72166-2", "Tobacco smoking status", (), 0, 0),
        LabCode(
            "80383-3",
            "Influenza virus B Ag [Presence] in Upper respiratory specimen by Rapid immunoassay",
            (),
            0,
            0,
        ),
    )
}

ICD10_CODES: dict[str, str] = {
    "J10.1": "Influenza with other respiratory manifestations, seasonal influenza virus identified",
    "J11.1": "Influenza with other respiratory manifestations, virus not identified",
    "J06.9": "Acute upper respiratory infection, unspecified",
    "J18.9": "Pneumonia, unspecified",
    "J20.9": "Acute bronchitis, unspecified",
    "R50.9": "Fever, unspecified",
    "I10": "Essential (primary) hypertension",
    "E11.9": "Type 2 diabetes mellitus without complications",
    "E78.5": "Hyperlipidaemia, unspecified",
    "A09.9": "Gastroenteritis and colitis of unspecified origin",
    "K29.7": "Gastritis, unspecified",
    "M54.5": "Low back pain",
    "I25.1": "Atherosclerotic heart disease",
    "I63.9": "Cerebral infarction, unspecified",
    "N39.0": "Urinary tract infection, site not specified",
    "Z00.0": "General medical examination",
}

ATC_CODES: dict[str, str] = {
    "C08CA01": "amlodipine",
    "C09AA02": "enalapril",
    "C09CA01": "losartan",
    "C03AA03": "hydrochlorothiazide",
    "A10BA02": "metformin",
    "A10BB09": "gliclazide",
    "A10AE04": "insulin glargine",
    "C10AA05": "atorvastatin",
    "J05AH02": "oseltamivir",
    "N02BE01": "paracetamol",
    "M01AE01": "ibuprofen",
    "R05DA09": "dextromethorphan",
    "R05CB01": "acetylcysteine",
    "J01CA04": "amoxicillin",
    "J01DC02": "cefuroxime",
    "A02BC01": "omeprazole",
    "R06AX13": "loratadine",
}

#: Chinese names of the ICD-10 categories and ATC substances (CodeSystem designations, zh-CN)
ZH_NAMES: dict[str, dict[str, str]] = {
    "http://hl7.org/fhir/sid/icd-10": {
        "J10.1": "流行性感冒，伴有其他呼吸道表现，季节性流感病毒已标明",
        "J11.1": "流行性感冒，伴有其他呼吸道表现，病毒未标明",
        "J06.9": "急性上呼吸道感染",
        "J18.9": "肺炎",
        "J20.9": "急性支气管炎",
        "R50.9": "发热",
        "I10": "特发性（原发性）高血压",
        "E11.9": "2型糖尿病，不伴有并发症",
        "E78.5": "高脂血症",
        "A09.9": "胃肠炎和结肠炎",
        "K29.7": "胃炎",
        "M54.5": "下背痛",
        "I25.1": "动脉硬化性心脏病",
        "I63.9": "脑梗死",
        "N39.0": "泌尿道感染",
        "Z00.0": "一般医学检查",
    },
    "http://www.whocc.no/atc": {
        "C08CA01": "氨氯地平", "C09AA02": "依那普利", "C09CA01": "氯沙坦",
        "C03AA03": "氢氯噻嗪", "A10BA02": "二甲双胍", "A10BB09": "格列齐特",
        "A10AE04": "甘精胰岛素", "C10AA05": "阿托伐他汀", "J05AH02": "奥司他韦",
        "N02BE01": "对乙酰氨基酚", "M01AE01": "布洛芬", "R05DA09": "右美沙芬",
        "R05CB01": "乙酰半胱氨酸", "J01CA04": "阿莫西林", "J01DC02": "头孢呋辛",
        "A02BC01": "奥美拉唑", "R06AX13": "氯雷他定",
    },
}

#: GB/T 2261.1-2003 sex, with the FHIR administrative gender each maps to
SEX_CODES: dict[str, tuple[str, str]] = {
    "0": ("未知的性别", "unknown"),
    "1": ("男性", "male"),
    "2": ("女性", "female"),
    "9": ("未说明的性别", "unknown"),
}

#: GB 3304-1991 names of ethnic groups of China
ETHNICITY_CODES: dict[str, str] = {
    f"{i + 1:02d}": name
    for i, name in enumerate(
        [
            "汉族", "蒙古族", "回族", "藏族", "维吾尔族", "苗族", "彝族", "壮族", "布依族",
            "朝鲜族", "满族", "侗族", "瑶族", "白族", "土家族", "哈尼族", "哈萨克族", "傣族",
            "黎族", "傈僳族", "佤族", "畲族", "高山族", "拉祜族", "水族", "东乡族", "纳西族",
            "景颇族", "柯尔克孜族", "土族", "达斡尔族", "仫佬族", "羌族", "布朗族", "撒拉族",
            "毛南族", "仡佬族", "锡伯族", "阿昌族", "普米族", "塔吉克族", "怒族", "乌孜别克族",
            "俄罗斯族", "鄂温克族", "德昂族", "保安族", "裕固族", "京族", "塔塔尔族", "独龙族",
            "鄂伦春族", "赫哲族", "门巴族", "珞巴族", "基诺族",
        ]
    )
} | {"97": "其他未识别民族", "98": "外国血统中国籍人士"}

#: every standard system above with its display table, for lookups and CodeSystems
SYSTEMS: dict[str, dict[str, str]] = {
    LOINC: {c: v.display for c, v in LAB_CODES.items()},
    ICD10: ICD10_CODES,
    ATC: ATC_CODES,
    GB_SEX: {c: v[0] for c, v in SEX_CODES.items()},
    GB_ETHNICITY: ETHNICITY_CODES,
}


def display(system: str, code: str) -> str | None:
    """The display of a code in one of the region's systems, or ``None`` if unknown.

    >>> display("http://hl7.org/fhir/sid/icd-10", "I10")
    'Essential (primary) hypertension'
    """
    return SYSTEMS.get(system, {}).get(code)

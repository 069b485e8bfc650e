"""Local codes of the region's clinics, pharmacies and hospital H02 (what their exports carry).

The shipped CSV mappings (``healthmesh/ingest/csv/mappings``) translate these to ICD-10, ATC
and LOINC; ``LHQW`` and ``BLG`` (Chinese patent medicines) have no ATC code on purpose, so the
ingest keeps them as local codes and flags them.
"""

from __future__ import annotations

#: clinic diagnosis codes: ICD-10 -> (local code, local name)
CLINIC_DX: dict[str, tuple[str, str]] = {
    "J11.1": ("MZ0101", "流行性感冒"),
    "J10.1": ("MZ0104", "流行性感冒(病原确认)"),
    "J06.9": ("MZ0102", "急性上呼吸道感染"),
    "J20.9": ("MZ0103", "急性支气管炎"),
    "J18.9": ("MZ0105", "肺炎"),
    "A09.9": ("MZ0201", "急性胃肠炎"),
    "K29.7": ("MZ0202", "胃炎"),
    "M54.5": ("MZ0301", "腰痛"),
    "N39.0": ("MZ0401", "尿路感染"),
    "Z00.0": ("MZ0901", "健康体检"),
    "I10": ("MZ1001", "高血压"),
    "E11.9": ("MZ1002", "2型糖尿病"),
}
#: drug codes shared by clinics and pharmacies: drug key -> (local code, local name)
DRUGS: dict[str, tuple[str, str]] = {
    "C08CA01": ("YP0101", "苯磺酸氨氯地平片"),
    "C09AA02": ("YP0102", "马来酸依那普利片"),
    "C09CA01": ("YP0103", "氯沙坦钾片"),
    "C03AA03": ("YP0104", "氢氯噻嗪片"),
    "A10BA02": ("YP0201", "盐酸二甲双胍片"),
    "A10BB09": ("YP0202", "格列齐特缓释片"),
    "J05AH02": ("YP0301", "磷酸奥司他韦胶囊"),
    "N02BE01": ("YP0401", "对乙酰氨基酚片"),
    "M01AE01": ("YP0402", "布洛芬缓释胶囊"),
    "R05DA09": ("YP0403", "氢溴酸右美沙芬片"),
    "R05CB01": ("YP0404", "乙酰半胱氨酸泡腾片"),
    "J01CA04": ("YP0501", "阿莫西林胶囊"),
    "J01DC02": ("YP0502", "头孢呋辛酯片"),
    "A02BC01": ("YP0601", "奥美拉唑肠溶胶囊"),
    "R06AX13": ("YP0701", "氯雷他定片"),
    "LHQW": ("YP9001", "连花清瘟胶囊"),
    "BLG": ("YP9002", "板蓝根颗粒"),
}
#: hospital H02 sends its own laboratory codes, with LOINC as the alternate coding
H02_LAB: dict[str, tuple[str, str]] = {
    "8310-5": ("TW", "体温"),
    "6690-2": ("WBC", "白细胞计数"),
    "1988-5": ("CRP", "C反应蛋白"),
    "80382-5": ("FLUA", "甲型流感病毒抗原"),
    "8480-6": ("SBP", "收缩压"),
    "8462-4": ("DBP", "舒张压"),
    "14771-0": ("GLU", "空腹血糖"),
    "4548-4": ("HBA1C", "糖化血红蛋白"),
    "14647-2": ("TC", "总胆固醇"),
    "14682-9": ("CREA", "肌酐"),
    "39156-5": ("BMI", "体重指数"),
    "72166-2": ("XYZT", "吸烟状况"),
}

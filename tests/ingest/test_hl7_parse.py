"""HL7 v2 decoding and parsing quirks: BOM, line ends, batches, escapes, repetitions,
Z-segments, GB 18030 and UTF-8 Chinese names, resident identity numbers and mobiles."""

from __future__ import annotations

from healthmesh.ingest.adapter import Converted, Rejected
from healthmesh.ingest.cn_identity import check_digit, check_resident_id, normalise_mobile
from healthmesh.ingest.hl7v2 import Hl7v2Adapter
from healthmesh.ingest.hl7v2.access import V2Message
from healthmesh.ingest.hl7v2.decode import split_messages
from healthmesh.ingest.hl7v2.vocab import RESIDENT_ID_SYSTEM

VALID_ID = "11010519491231002X"


def cn_message(charset: str = "UNICODE UTF-8", resident_id: str = VALID_ID) -> str:
    return (
        "\r".join(
            [
                f"MSH|^~\\&|HIS|第一医院|||20240105083000+0800||ADT^A01^ADT_A01|M1|P|2.5|||||CHN|{charset}",
                "EVN|A01|20240105083000+0800",
                f"PID|1||MRN001^^^H1^MR~{resident_id}^^^^NNCHN||王^小明||19491231|F|||"
                "朝阳路1号^^北京^北京^100000^CHN^H||138-0013-8000^PRN^CP",
                "PV1|1|I|W1^101^1||||D01^李^医生||||||||||||V0001|||||||||||||||||||||||||"
                "20240105080000+0800",
                "ZPI|1|custom",
            ]
        )
        + "\r"
    )


def convert(data: bytes) -> list[Converted | Rejected]:
    return list(Hl7v2Adapter("test").convert(data, source="t.hl7"))


def only(data: bytes) -> Converted:
    (out,) = convert(data)
    assert isinstance(out, Converted), out
    return out


def patient(out: Converted) -> dict:
    return next(r for r in out.resources if r["resourceType"] == "Patient")


def test_utf8_chinese_name_with_pinyin_and_resident_id() -> None:
    out = only(cn_message().encode("utf-8"))
    p = patient(out)
    assert p["name"][0]["family"] == "王" and p["name"][0]["given"] == ["小明"]
    assert p["name"][0]["text"] == "王小明"
    assert p["name"][1]["family"] == "Wang" and p["name"][1]["given"] == ["Xiaoming"]
    rid = next(i for i in p["identifier"] if i["system"] == RESIDENT_ID_SYSTEM)
    assert rid["value"] == VALID_ID and "extension" not in rid
    assert p["birthDate"] == "1949-12-31" and p["gender"] == "female"
    assert p["telecom"] == [{"system": "phone", "use": "mobile", "value": "+8613800138000"}]
    assert p["address"][0]["city"] == "北京"
    assert "Z-segments ignored: ZPI" in out.notes


def test_gb18030_declared_in_msh18() -> None:
    data = cn_message("GB 18030-2000").encode("gb18030")
    assert data != cn_message("GB 18030-2000").encode("utf-8")
    p = patient(only(data))
    assert p["name"][0]["text"] == "王小明"


def test_gb18030_without_msh18_is_detected_and_noted() -> None:
    out = only(cn_message("").encode("gb18030"))
    assert patient(out)["name"][0]["text"] == "王小明"
    assert any("GB 18030" in n for n in out.notes)


def test_declared_charset_that_does_not_fit_is_quarantined() -> None:
    (out,) = convert(cn_message("UNICODE UTF-8").encode("gb18030"))
    assert isinstance(out, Rejected) and out.location == "MSH-18"
    (out,) = convert(cn_message("KLINGON").encode("utf-8"))
    assert isinstance(out, Rejected) and out.reason == "unknown character set in MSH-18"


def test_bad_resident_id_check_digit_is_kept_and_flagged() -> None:
    bad = VALID_ID[:17] + "5"
    out = only(cn_message(resident_id=bad).encode("utf-8"))
    rid = next(i for i in patient(out)["identifier"] if i["system"] == RESIDENT_ID_SYSTEM)
    assert rid["value"] == bad
    assert rid["extension"][0]["valueString"] == "check digit does not match (GB 11643)"
    assert any("resident ID flagged" in n for n in out.notes)
    assert all(bad not in n for n in out.notes)  # no identifier values in notes


def test_gb11643_check_digits() -> None:
    assert check_digit("11010519491231002") == "X"
    assert check_resident_id("440524188001010014").valid
    assert not check_resident_id("44052418800101001").valid
    assert check_resident_id("110105194902301234").problem == "birth date part is not a date"
    assert normalise_mobile("0086 139 1234 5678") == "+8613912345678"
    assert normalise_mobile("12345678901") is None


def test_bom_lf_crlf_and_batches_split_into_messages() -> None:
    one = cn_message().encode("utf-8")
    lf = one.replace(b"\r", b"\n")
    crlf = one.replace(b"\r", b"\r\n")
    batch = b"\xef\xbb\xbfFHS|^~\\&|X\nBHS|^~\\&|X\n" + lf + b"\n\n" + crlf + b"BTS|2\nFTS|1\n"
    raws = list(split_messages(batch))
    assert len(raws) == 2
    assert raws[0].data == raws[1].data == one
    outs = convert(batch)
    assert [type(o) for o in outs] == [Converted, Converted]
    assert outs[0].source_ref == "t.hl7#1" and outs[1].source_ref == "t.hl7#2"
    assert "FHS batch header skipped" in outs[0].notes
    assert outs[0].resources == outs[1].resources


def test_escape_sequences_repetitions_and_components() -> None:
    text = (
        "MSH|^~\\&|A|B|||20240101||ADT^A08|1|P|2.5\r"
        "PID|1||M1^^^H1^MR~M2^^^H2^PI||O\\T\\Brien^Ann\\F\\Marie~Smith^Ann||20000101|F\r"
    )
    msg = V2Message(text)
    pid = msg.first("PID")
    assert pid is not None
    assert [r.c(1) for r in pid.reps(3)] == ["M1", "M2"]
    assert pid.v(3, 4) == "H1"
    assert pid.v(5, 1) == "O&Brien" and pid.v(5, 2) == "Ann|Marie"
    p = patient(only(text.encode()))
    assert [n["family"] for n in p["name"]] == ["O&Brien", "Smith"]
    assert [i["value"] for i in p["identifier"]] == ["M1", "M2"]


def test_garbage_and_missing_fields_are_quarantined_with_location() -> None:
    cases = {
        b"hello world\r": ("message does not start with an MSH segment", "MSH"),
        b"MSH|^~\\&|A|B|||2024||ADT^A01|1|P|2.5\rPID|1||^^^H1\r": (
            "no patient identifier (PID-3, PID-2 or PID-4 are empty)",
            "PID-3",
        ),
        b"MSH|^~\\&|A|B|||2024||ADT^A01|1|P|2.5\rPID|1||M1||X||1999-01-01\r": (
            "not a valid HL7 date/time",
            "PID-7",
        ),
        b"MSH|^~\\&|A|B|||2024||QRY^A19|1|P|2.5\r": (
            "message type QRY^A19 is not supported",
            "MSH-9",
        ),
        b"MSH|^~\\&|A|B|||2024||ORU^R01|1|P|2.5\rPID|1||M1\rOBR|1|P1||GLU^Glucose^L\r"
        b"OBX|1|NM|GLU^Glucose^L||high|mg/dL\r": ("numeric value is not a number", "OBX[1]-5"),
    }
    for data, (reason, location) in cases.items():
        (out,) = convert(data)
        assert isinstance(out, Rejected), data
        assert (out.reason, out.location) == (reason, location)
        assert out.source_bytes == data


def test_lab_result_maps_to_observation_and_report() -> None:
    data = (
        "MSH|^~\\&|LIS|H1|||20240101||ORU^R01|9|P|2.5|||||CHN|UNICODE UTF-8\r"
        "PID|1||M1^^^H1^MR||张^三||19800101|M\r"
        "OBR|1|P100|F200|2345-7^血糖^LN|||202401010800\r"
        "OBX|1|NM|2345-7^血糖^LN||6.1|mmol/L^mmol/L^UCUM|3.9-6.1|N|||F\r"
        "OBX|2|SN|2160-0^Creatinine^LN||<^0.5|mg/dL^^UCUM||||F\r"
    ).encode()
    out = only(data)
    obs = [r for r in out.resources if r["resourceType"] == "Observation"]
    assert obs[0]["valueQuantity"] == {
        "value": 6.1,
        "unit": "mmol/L",
        "code": "mmol/L",
        "system": "http://unitsofmeasure.org",
    }
    assert obs[0]["interpretation"][0]["coding"][0]["code"] == "N"
    assert obs[1]["valueQuantity"]["comparator"] == "<"
    report = next(r for r in out.resources if r["resourceType"] == "DiagnosticReport")
    assert [x["reference"] for x in report["result"]] == [f"Observation/{o['id']}" for o in obs]
    assert report["effectiveDateTime"] == "2024-01-01T08:00:00+08:00"

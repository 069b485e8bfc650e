"""The shortcuts taken for speed give the same answers as the plain ways: ids equal uuid5,
plain-field reads equal the repetition path, sub-components split on demand, prune keeps
what FHIR allows (0, False) and drops empties."""

from __future__ import annotations

import random
import uuid

import pytest

from healthmesh.ingest.adapter import ID_NAMESPACE, deterministic_id
from healthmesh.ingest.hl7v2.access import V2Message
from healthmesh.ingest.hl7v2.adapter import prune


def test_deterministic_id_is_uuid5_of_the_joined_key() -> None:
    rng = random.Random(7)
    alphabet = "ab0|^&~\\\x1f中文王"
    for _ in range(2000):
        key = [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
            for _ in range(rng.randint(0, 4))
        ]
        expected = uuid.uuid5(ID_NAMESPACE, "\x1f".join(("Patient", *key)))
        assert deterministic_id("Patient", *key) == str(expected)


MSG = (
    "MSH|^~\\&|HIS|H1|||20240101||ADT^A01|C1|P|2.5\r"
    "PID|1||M1^^^H1&1.2.3&ISO^MR~X9||王^小明||19491231|F|||a\\F\\b^^c||plain|"
    " |x&y|^|~\r"
    "ZPI|1\r"
)


def _by_reps(seg: object, n: int, c: int = 1, s: int = 1) -> str:
    reps = seg.reps(n)  # type: ignore[attr-defined]
    return reps[0].c(c, s) if reps else ""


@pytest.mark.parametrize("n", range(1, 20))
@pytest.mark.parametrize(("c", "s"), [(1, 1), (1, 2), (2, 1), (4, 1), (4, 2), (4, 3), (4, 4)])
def test_plain_field_shortcut_equals_repetition_path(n: int, c: int, s: int) -> None:
    fast = V2Message(MSG).first("PID")
    slow = V2Message(MSG).first("PID")
    assert fast is not None and slow is not None
    assert fast.v(n, c, s) == _by_reps(slow, n, c, s)


def test_components_and_sub_components() -> None:
    pid = V2Message(MSG).first("PID")
    assert pid is not None
    assert pid.v(3, 4) == "H1" and pid.v(3, 4, 2) == "1.2.3" and pid.v(3, 4, 3) == "ISO"
    assert pid.v(3, 4, 4) == "" and pid.v(3, 1, 2) == ""
    assert [r.c(1) for r in pid.reps(3)] == ["M1", "X9"]
    assert pid.reps(3)[0].subs(4) == ["H1", "1.2.3", "ISO"]
    assert pid.v(11) == "a|b"  # escape resolved
    assert pid.v(13) == "plain" and pid.v(13, 2) == ""
    assert pid.v(14) == " "  # whitespace is a value, as before
    assert pid.v(15) == "x" and pid.v(15, 1, 2) == "y"
    assert pid.reps(16) == [] and pid.reps(17) == []  # only separators: no repetition


def test_segments_are_built_lazily_but_complete() -> None:
    msg = V2Message(MSG)
    assert msg.type == "ADT" and msg.event == "A01" and msg.control_id == "C1"
    assert msg.names() == ["MSH", "PID", "ZPI"]
    assert [s.position for s in msg.segments] == [1, 2, 3]
    assert msg.segments[0] is msg.msh


def test_prune() -> None:
    node = {
        "a": "",
        "b": None,
        "c": 0,
        "d": False,
        "e": [],
        "f": {"g": "", "h": [{"i": None}, "", "x", 0]},
        "j": [[], [""], ["y"]],
        "k": 1.5,
    }
    assert prune(node) == {"c": 0, "d": False, "f": {"h": ["x", 0]}, "j": [["y"]], "k": 1.5}
    assert prune([{}, "", None]) == [] and prune("s") == "s"


def test_patient_memo_maps_a_repeated_pid_once_with_the_same_result() -> None:
    from healthmesh.ingest.adapter import Converted
    from healthmesh.ingest.hl7v2 import Hl7v2Adapter
    from healthmesh.ingest.hl7v2.decode import split_messages

    pid = "PID|1||M1^^^H1^MR~11010519491231002Y^^^^NNCHN||王^小明||19491231|F\r"
    msgs = [
        f"MSH|^~\\&|HIS|H1|||2024010{i}||ADT^A0{i}|C{i}|P|2.5\rEVN|A0{i}\r{pid}"
        f"PV1|1|I|||||||||||||||||V{i}\r".encode()
        for i in (1, 3)
    ] + [
        b"MSH|^~\\&|HIS|H1|||20240109||ADT^A40|C9|P|2.5\rEVN|A40\r"
        + pid.encode()
        + b"MRG|M0^^^H1^MR\r"
    ]
    memo = Hl7v2Adapter("H")
    plain = Hl7v2Adapter("H")
    plain.patients = None  # type: ignore[assignment]
    for data in msgs:
        a, b = (
            next(ad.convert_one(r, source="x") for r in split_messages(data))
            for ad in (memo, plain)
        )
        assert isinstance(a, Converted) and isinstance(b, Converted)
        assert a.resources == b.resources and a.notes == b.notes
        assert any("resident ID flagged" in n for n in a.notes)  # replayed on a hit
    assert memo.patients.hits == 2 and memo.patients.misses == 1
    # the A40 added a link to its copy; the memo kept the Patient as first mapped
    again = next(memo.convert(msgs[0], source="x"))
    assert isinstance(again, Converted) and "link" not in again.resources[0]


def test_patient_memo_is_bounded() -> None:
    from healthmesh.ingest.hl7v2.memo import PatientMemo

    memo = PatientMemo(size=2)
    for k in "abc":
        memo.put(("f", "tz", "|^~\\&", k), {"id": k}, ())
    assert memo.get(("f", "tz", "|^~\\&", "a")) is None
    hit = memo.get(("f", "tz", "|^~\\&", "c"))
    assert hit is not None and hit[0] == {"id": "c"}


def test_csv_date_shortcut_agrees_with_strptime() -> None:
    import datetime as dt

    from healthmesh.ingest.csv.values import _strptime

    formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d  %H:%M",
               "%d.%m.%Y", "%Y年%m月%d日", "%y-%m-%d", "%Y-%m-%d %%"]  # fmt: skip
    samples = ["2024-01-31", "2024-1-5", "2024/02/30", "2024-02-29", "2023-02-29", "20240131",
               "2024-01-31 23:59:59", "2024-01-31 24:00", "2024-01-31 7:5", "2024-01-31\t07:05",
               "31.01.2024", " 2024-01-31", "2024-01-31 ", "2024年1月31日", "0000-01-01",
               "2024-01- 5", "2024-13-01", "2024-01-31 12:00:60", "24-01-31", "2024-01-31 %"]  # fmt: skip
    rng = random.Random(3)
    samples += ["".join(rng.choice("0123456789-/ :.年月日") for _ in range(rng.randint(6, 19)))
                for _ in range(3000)]  # fmt: skip

    def outcome(parse: object, text: str, fmt: str) -> object:
        try:
            return parse(text, fmt)  # type: ignore[operator]
        except ValueError:
            return "error"

    for fmt in formats:
        for text in samples:
            assert outcome(_strptime, text, fmt) == outcome(dt.datetime.strptime, text, fmt)

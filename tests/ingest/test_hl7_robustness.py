"""No input crashes the HL7 v2 adapter: random bytes and damaged real messages always give
one outcome per message, converted or rejected with a reason and a location."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthmesh.ingest.adapter import Converted, Rejected
from healthmesh.ingest.hl7v2 import Hl7v2Adapter

ADAPTER = Hl7v2Adapter("fuzz")


def check(data: bytes) -> None:
    for out in ADAPTER.convert(data, source="f"):
        assert isinstance(out, Converted | Rejected)
        if isinstance(out, Rejected):
            assert out.reason and out.location


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    check(data)
    check(b"MSH|^~\\&|" + data)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(min_value=0, max_value=138),
    st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(list(b"|^~\\&\r\n0A \xe4\xff"))), max_size=8
    ),
)
def test_damaged_real_messages(
    shared_data: Path, index: int, edits: list[tuple[float, int]]
) -> None:
    samples = sorted((shared_data / "hl7v2" / "ms-fhir-converter" / "samples").glob("*.hl7"))
    data = bytearray(samples[index].read_bytes())
    for where, byte in edits:
        data[int(where * (len(data) - 1))] = byte
    check(bytes(data))

"""SMART App Launch v2 scopes: grammar, matching, v1 mapping, query restrictions and the
intersection used for scope downgrading. Tables follow the examples of the SMART App Launch
2.x page "Scopes and Launch Context"."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from healthmesh.access.scopes import InvalidScope, ScopeSet, permission_for

# -- grammar ------------------------------------------------------------------------------

VALID = [
    # (scope, context, type, permissions, restriction)
    ("patient/Observation.rs", "patient", "Observation", "rs", {}),
    ("patient/Patient.r", "patient", "Patient", "r", {}),
    ("patient/Observation.c", "patient", "Observation", "c", {}),
    ("patient/*.cruds", "patient", "*", "cruds", {}),
    ("user/Observation.rs", "user", "Observation", "rs", {}),
    ("user/Appointment.cruds", "user", "Appointment", "cruds", {}),
    ("user/*.cruds", "user", "*", "cruds", {}),
    ("system/Observation.rs", "system", "Observation", "rs", {}),
    ("system/*.rs", "system", "*", "rs", {}),
    ("system/Encounter.cud", "system", "Encounter", "cud", {}),
    ("system/Observation.rd", "system", "Observation", "rd", {}),
    (
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/"
        "observation-category|laboratory",
        "patient",
        "Observation",
        "rs",
        {"category": "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"},
    ),
    (
        "system/Observation.s?code:in=http://valueset.example.org/ValueSet/diabetes-codes",
        "system",
        "Observation",
        "s",
        {"code:in": "http://valueset.example.org/ValueSet/diabetes-codes"},
    ),
    (
        "system/Observation.rs?category=a&status=final",
        "system",
        "Observation",
        "rs",
        {"category": "a", "status": "final"},
    ),
    ("system/Observation.rs?code=a%26b", "system", "Observation", "rs", {"code": "a&b"}),
]


@pytest.mark.parametrize(("text", "ctx", "rtype", "perms", "restriction"), VALID)
def test_valid_clinical_scopes_parse(text, ctx, rtype, perms, restriction) -> None:
    s = ScopeSet.parse(text)
    assert len(s.resources) == 1
    r = s.resources[0]
    assert (r.context, r.resource_type, r.permissions, dict(r.restriction)) == (
        ctx,
        rtype,
        perms,
        restriction,
    )
    assert ScopeSet.parse(str(s)) == s


V1 = [
    ("patient/*.read", "rs"),
    ("user/Observation.write", "cud"),
    ("system/*.*", "cruds"),
]


@pytest.mark.parametrize(("text", "perms"), V1)
def test_v1_suffixes_map_to_v2_and_print_back_as_v1(text, perms) -> None:
    s = ScopeSet.parse(text)
    assert s.resources[0].permissions == perms
    assert s.resources[0].v1
    assert str(s) == text


INVALID = [
    "patient/Observation.dus",  # the specification's own example of an undefined request
    "patient/Observation.sr",
    "patient/Observation.rr",
    "patient/Observation.x",
    "patient/Observation.",
    "patient/Observation",
    "admin/Observation.rs",
    "patient/observation.rs",
    "Observation.rs",
    "patient/Observation.rs?",
    "patient/Observation.rs?category",
    "patient/Observation.rs?category=",
    "patient/Observation.rs?category=a&category=b",
    "patient/Observation.reads",
    "launch/Patient",
    "superuser",
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_scopes_are_rejected(text) -> None:
    with pytest.raises(InvalidScope):
        ScopeSet.parse(text)


def test_non_strict_parse_drops_bad_tokens_only() -> None:
    s = ScopeSet.parse("system/Patient.rs bogus system/Observation.dus openid", strict=False)
    assert str(s) == "system/Patient.rs openid"


def test_context_scopes_are_kept_but_grant_nothing() -> None:
    s = ScopeSet.parse(
        "openid fhirUser profile launch launch/patient launch/encounter "
        "offline_access online_access"
    )
    assert not s.resources
    assert s.other == {
        "openid",
        "fhirUser",
        "profile",
        "launch",
        "launch/patient",
        "launch/encounter",
        "offline_access",
        "online_access",
    }
    assert not s.allows("Patient", "r")


# -- matching -----------------------------------------------------------------------------

# (granted scopes, resource type, permission, allowed)
MATCHING = [
    ("patient/Observation.rs", "Observation", "r", True),
    ("patient/Observation.rs", "Observation", "s", True),
    ("patient/Observation.rs", "Observation", "c", False),
    ("patient/Observation.rs", "Observation", "u", False),
    ("patient/Observation.rs", "Observation", "d", False),
    ("patient/Observation.rs", "Patient", "r", False),
    ("patient/Patient.r", "Patient", "r", True),
    ("patient/Patient.r", "Patient", "s", False),
    ("patient/Observation.c", "Observation", "c", True),
    ("patient/Observation.c", "Observation", "r", False),  # write does not imply read
    ("user/*.cruds", "Appointment", "d", True),
    ("system/*.rs", "Condition", "s", True),
    ("system/*.rs", "Condition", "c", False),
    ("system/Encounter.cud", "Encounter", "u", True),
    ("system/Encounter.cud", "Encounter", "r", False),
    ("system/*.read", "Patient", "s", True),
    ("system/*.read", "Patient", "d", False),  # .read is .rs, never .rd
    ("system/*.write", "Patient", "d", True),
    ("system/*.write", "Patient", "r", False),
    ("system/*.*", "Patient", "c", True),
    ("system/Observation.r system/Observation.s", "Observation", "s", True),
    ("openid fhirUser", "Patient", "r", False),
    ("", "Patient", "r", False),
]


@pytest.mark.parametrize(("granted", "rtype", "perm", "allowed"), MATCHING)
def test_allows_table(granted, rtype, perm, allowed) -> None:
    assert ScopeSet.parse(granted).allows(rtype, perm) is allowed


@pytest.mark.parametrize(
    ("interaction", "perm"),
    [
        ("read", "r"),
        ("vread", "r"),
        ("history-instance", "r"),
        ("update", "u"),
        ("patch", "u"),
        ("delete", "d"),
        ("create", "c"),
        ("search-type", "s"),
        ("search-system", "s"),
        ("history-type", "s"),
        ("history-system", "s"),
        ("s", "s"),
    ],
)
def test_fhir_interactions_map_to_permissions(interaction, perm) -> None:
    assert permission_for(interaction) == perm
    only = ScopeSet.parse(f"system/Patient.{perm}")
    assert only.allows("Patient", interaction)
    others = "".join(c for c in "cruds" if c != perm)
    assert not ScopeSet.parse(f"system/Patient.{others}").allows("Patient", interaction)


def test_unknown_interaction_is_an_error() -> None:
    with pytest.raises(ValueError):
        ScopeSet.parse("system/*.cruds").allows("Patient", "x")


def test_scope_equivalence_and_factoring() -> None:
    assert ScopeSet.parse("system/Observation.r system/Observation.s") == ScopeSet.parse(
        "system/Observation.rs"
    )
    assert str(ScopeSet.parse("system/Observation.s system/Observation.r")) == (
        "system/Observation.rs"
    )
    assert str(ScopeSet.parse("system/*.rs system/Patient.r")) == "system/*.rs"
    assert str(ScopeSet.parse("system/Observation.rs?category=a system/Observation.rs")) == (
        "system/Observation.rs"
    )
    both = "system/*.rs?_security=N system/Patient.rs"
    assert str(ScopeSet.parse(both)) == "system/*.rs?_security=N system/Patient.rs"


def test_types_for() -> None:
    all_types = ["Patient", "Observation", "Condition"]
    s = ScopeSet.parse("system/Patient.rs system/Observation.s system/Practitioner.rs")
    assert s.types_for("s", all_types) == {"Patient", "Observation"}
    assert s.types_for("read", all_types) == {"Patient"}
    assert ScopeSet.parse("system/*.rs").types_for("s", all_types) == frozenset(all_types)
    assert ScopeSet.parse("system/*.rs").types_for("c", all_types) == frozenset()


# -- query restrictions -------------------------------------------------------------------


def test_restrictions_none_when_unrestricted_empty_when_denied() -> None:
    s = ScopeSet.parse("system/Patient.rs system/Observation.rs?category=laboratory")
    assert s.restrictions("Patient", "s") is None
    assert s.restrictions("Observation", "s") == [{"category": "laboratory"}]
    assert s.restrictions("Observation", "read") == [{"category": "laboratory"}]
    assert s.restrictions("Condition", "s") == []
    assert s.restrictions("Observation", "c") == []


def test_restrictions_are_ored_and_only_for_their_permissions() -> None:
    s = ScopeSet.parse(
        "system/Observation.s?category=laboratory system/Observation.s?category=vital-signs "
        "system/Observation.r"
    )
    assert s.restrictions("Observation", "s") == [
        {"category": "laboratory"},
        {"category": "vital-signs"},
    ]
    assert s.restrictions("Observation", "r") is None
    wild = ScopeSet.parse("system/*.rs?_security=N")
    assert wild.restrictions("Condition", "s") == [{"_security": "N"}]


def test_values_are_decoded_and_printed_back() -> None:
    s = ScopeSet.parse("system/Observation.rs?code=http://loinc.org|8480-6&note=a%26b%3Dc")
    assert s.restrictions("Observation", "s") == [
        {"code": "http://loinc.org|8480-6", "note": "a&b=c"}
    ]
    assert str(s) == "system/Observation.rs?code=http://loinc.org|8480-6&note=a%26b%3Dc"


def test_patient_scopes_limit_to_the_compartment() -> None:
    s = ScopeSet.parse("patient/Observation.rs")
    assert s.compartment("Observation", "s") == "Patient"
    assert s.restrictions("Observation", "s") is None
    assert ScopeSet.parse("system/Observation.rs").compartment("Observation", "s") is None


def test_mixing_patient_and_population_scopes_never_widens() -> None:
    # patient/ unrestricted + system/ restricted: must not become "unrestricted everywhere"
    s = ScopeSet.parse("patient/Observation.rs system/Observation.rs?category=laboratory")
    assert s.compartment("Observation", "s") is None
    assert s.restrictions("Observation", "s") == [{"category": "laboratory"}]


# -- intersection (scope downgrading) -----------------------------------------------------

INTERSECTIONS = [
    # requested, registered, granted
    ("system/Observation.cruds", "system/*.rs", "system/Observation.rs"),
    (
        "system/*.rs",
        "system/Patient.rs system/Observation.r",
        "system/Observation.r system/Patient.rs",
    ),
    ("system/Patient.rs", "system/Observation.rs", ""),
    ("system/*.read", "system/*.cruds", "system/*.read"),
    ("system/*.*", "system/*.rs", "system/*.read"),
    ("system/*.write", "system/*.cu", "system/*.cu"),
    (
        "system/Observation.rs",
        "system/Observation.rs?category=laboratory",
        "system/Observation.rs?category=laboratory",
    ),
    ("system/Observation.rs?category=a", "system/Observation.rs?category=b", ""),
    (
        "system/Observation.rs?category=a",
        "system/*.rs?status=final",
        "system/Observation.rs?category=a&status=final",
    ),
    ("patient/*.rs", "system/*.rs", ""),
    ("openid system/Patient.r", "openid system/*.rs", "system/Patient.r openid"),
]


@pytest.mark.parametrize(("requested", "registered", "granted"), INTERSECTIONS)
def test_intersection_table(requested, registered, granted) -> None:
    got = ScopeSet.parse(requested) & ScopeSet.parse(registered)
    assert str(got) == granted


def test_only_keeps_given_contexts() -> None:
    s = ScopeSet.parse("patient/*.rs user/Patient.r system/Observation.rs openid")
    assert str(s.only("system")) == "system/Observation.rs"
    assert s.contexts == {"patient", "user", "system"}


# -- properties ---------------------------------------------------------------------------

TYPES = ["Patient", "Observation", "*"]
_perm = st.sets(st.sampled_from("cruds"), min_size=1).map(
    lambda p: "".join(c for c in "cruds" if c in p)
)
_restr = st.dictionaries(
    st.sampled_from(["category", "status", "_security"]), st.sampled_from(["a", "b"]), max_size=2
)


@st.composite
def _scope_sets(draw, contexts=("system", "user")) -> ScopeSet:
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        ctx, rtype, perms = (
            draw(st.sampled_from(contexts)),
            draw(st.sampled_from(TYPES)),
            draw(_perm),
        )
        query = "&".join(f"{k}={v}" for k, v in draw(_restr).items())
        parts.append(f"{ctx}/{rtype}.{perms}" + (f"?{query}" if query else ""))
    return ScopeSet.parse(" ".join(parts))


def _implies(narrow: dict[str, str], wide: list[dict[str, str]] | None) -> bool:
    """A resource matching ``narrow`` matches some map of ``wide`` (None: everything)."""
    return wide is None or any(w.items() <= narrow.items() for w in wide)


@settings(max_examples=150, deadline=None)
@given(_scope_sets(("system", "user", "patient")))
def test_round_trip_through_text(s) -> None:
    assert ScopeSet.parse(str(s)) == s


@settings(max_examples=150, deadline=None)
@given(_scope_sets(), _scope_sets())
def test_intersection_never_grants_more_than_either_side(a, b) -> None:
    both = a & b
    for rtype in ("Patient", "Observation", "Condition"):
        for perm in "cruds":
            if not both.allows(rtype, perm):
                continue
            assert a.allows(rtype, perm)
            assert b.allows(rtype, perm)
            got = both.restrictions(rtype, perm)
            for side in (a, b):
                if got is None:
                    assert side.restrictions(rtype, perm) is None
                else:
                    assert all(_implies(g, side.restrictions(rtype, perm)) for g in got)


@settings(max_examples=150, deadline=None)
@given(_scope_sets(("system",)), _scope_sets(("system",)))
def test_intersection_keeps_what_both_grant_unrestricted(a, b) -> None:
    both = a & b
    for rtype in ("Patient", "Observation"):
        for perm in "cruds":
            if a.restrictions(rtype, perm) is None and b.restrictions(rtype, perm) is None:
                assert both.restrictions(rtype, perm) is None

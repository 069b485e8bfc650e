"""Property tests: ``validate`` never raises, whatever JSON it is given, and stays consistent.

Random JSON documents and random corruptions of a real resource are validated; the result
must always be a list of well-formed issues, and ``check`` must raise exactly when an
error-level issue exists.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthmesh.fhir.validation import ResourceValidationError, check, validate

KEYS = st.sampled_from(
    [
        "resourceType",
        "id",
        "name",
        "given",
        "_given",
        "extension",
        "url",
        "valueString",
        "valueInteger",
        "reference",
        "coding",
        "code",
        "system",
        "status",
        "entry",
        "resource",
        "contained",
        "text",
        "div",
        "",
        "_",
        "foo",
        "value",
        "gender",
        "birthDate",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["Patient", "Observation", "Bundle", "Patient/1", "urn:uuid:x", "male"])
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=40,
)
SEVERITIES = {"error", "warning"}


def _well_formed(resource: object) -> None:
    issues = validate(resource)
    assert isinstance(issues, list)
    for issue in issues:
        assert issue.severity in SEVERITIES
        assert issue.code
        assert issue.message
        assert isinstance(issue.location, str)
    if any(i.severity == "error" for i in issues):
        with pytest.raises(ResourceValidationError) as info:
            check(resource)
        assert info.value.issues == issues
    else:
        check(resource)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_random_json_never_raises(doc: Any) -> None:
    _well_formed(doc)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(KEYS, JSON, max_size=6),
    st.sampled_from(["Patient", "Bundle", "Observation", "Parameters"]),
)
def test_random_resources_never_raise(body: dict[str, Any], rtype: str) -> None:
    _well_formed({**body, "resourceType": rtype})


@pytest.fixture(scope="module")
def example_patient(shared_data: Path) -> dict[str, Any]:
    path = shared_data / "fhir" / "examples" / "resources" / "Patient-example.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_corrupting_a_real_resource_never_raises(
    example_patient: dict[str, Any], data: st.DataObject
) -> None:
    doc = copy.deepcopy(example_patient)
    paths = _paths(doc)
    target = data.draw(st.sampled_from(paths))
    node: Any = doc
    for part in target[:-1]:
        node = node[part]
    node[target[-1]] = data.draw(JSON)
    _well_formed(doc)


def test_deep_nesting_is_reported_not_raised() -> None:
    ext: dict[str, Any] = {"url": "u", "valueString": "v"}
    for _ in range(5000):
        ext = {"url": "u", "extension": [ext]}
    issues = validate({"resourceType": "Patient", "extension": [ext]})
    assert [i.code for i in issues] == ["too-costly"]


def test_issue_count_is_bounded() -> None:
    doc = {"resourceType": "Patient", **{f"bad{i}": i for i in range(1000)}}
    issues = validate(doc)
    assert 200 <= len(issues) <= 202
    assert issues[-1].code == "too-costly"

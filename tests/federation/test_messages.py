"""Protocol messages: idempotent task ids and the rules a task or a result must keep."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from healthmesh.errors import InvalidInput
from healthmesh.federation.identity import Identity
from healthmesh.federation.messages import PollRequest, Task, TaskResult, parse_model, task_id
from healthmesh.federation.sealing import seal

NOW = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.UTC)
HUB, NODE = Identity.generate("hub"), Identity.generate("hosp-a")


def test_task_id_is_idempotent_and_distinct() -> None:
    assert task_id("job-1", 0, "hosp-a") == task_id("job-1", 0, "hosp-a")
    ids = {
        task_id(j, r, n) for j in ("job-1", "job-2") for r in (0, 1) for n in ("hosp-a", "hosp-b")
    }
    assert len(ids) == 8
    t = Task.new(job_id="job-1", node="hosp-a", kind="study", issued_at=NOW, ttl_s=60)
    assert t.id == task_id("job-1", 0, "hosp-a") and t.expires_at == NOW + dt.timedelta(seconds=60)
    assert Task.model_validate_json(t.model_dump_json()) == t


@pytest.mark.parametrize(
    "change",
    [
        {"issued_at": dt.datetime(2026, 11, 29, 8, 0)},  # naive
        {"expires_at": NOW},
        {"kind": "compute"},  # without algorithm and method
        {"kind": "delete-everything"},
        {"node": "bad node"},
        {"id": "short"},
        {"surprise": 1},
    ],
)
def test_task_rules(change: dict[str, object]) -> None:
    doc = Task.new(
        job_id="job-1", node="hosp-a", kind="study", issued_at=NOW, ttl_s=60
    ).model_dump()
    with pytest.raises(ValidationError):
        Task.model_validate(doc | change)


def test_result_rules() -> None:
    tid = task_id("job-1", 0, "hosp-a")
    env = seal(b"{}", HUB.public_record(), NODE, tid)
    TaskResult(task_id=tid, node="hosp-a", status="ok", sealed=env)
    TaskResult(task_id=tid, node="hosp-a", status="refused", rule="min-cell-size")
    TaskResult(task_id=tid, node="hosp-a", status="error", message="failed")
    bad = [
        {"status": "ok"},
        {"status": "refused"},
        {"status": "error", "sealed": env},
        {"status": "error", "rule": "min-cell-size"},
        {"status": "refused", "rule": "Min Cell"},
        {"status": "ok", "sealed": env.model_copy(update={"context": "x"})},
        {"status": "ok", "sealed": env, "node": "hosp-b"},
    ]
    for change in bad:
        with pytest.raises(ValidationError):
            TaskResult.model_validate({"task_id": tid, "node": "hosp-a"} | change)


def test_parse_model_names_fields_not_values() -> None:
    with pytest.raises(InvalidInput, match="max_n") as info:
        parse_model(PollRequest, b'{"max_n": 123456789}')
    assert "123456789" not in info.value.message
    with pytest.raises(InvalidInput):
        parse_model(PollRequest, b"not json")
    assert parse_model(PollRequest, {"max_n": 2}).max_n == 2

"""Study and job ids are random hex; one in about 2,000 such tokens holds an 11-digit run that
the ledger's identifier scan reads as a mobile number, and the run answered 400 (CI saw it in
``healthmesh demo``). Ids are drawn again until no 11-digit run is left."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from healthmesh.federation.inprocess import InProcessFederation
from healthmesh.ledger import phi

from .data import study

PHONE_LIKE = "a13812345678ffff"  # holds "13812345678"


@pytest.fixture
def phone_like_first(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every id is first drawn as a token that reads as a phone number."""
    drawn: list[str] = []
    real = phi.secrets.token_hex

    def draws() -> Iterator[str]:
        while True:
            yield PHONE_LIKE
            yield real(8)

    it = draws()

    def token_hex(nbytes: int) -> str:
        tok = next(it)[: 2 * nbytes]
        drawn.append(tok)
        return tok

    monkeypatch.setattr(phi.secrets, "token_hex", token_hex)
    return drawn


def test_a_phone_like_token_is_drawn_again(phone_like_first: list[str]) -> None:
    assert phi.find_identifier("job-" + PHONE_LIKE) == "phone number"
    tok = phi.random_id("job-")
    assert phone_like_first[0] == PHONE_LIKE and tok == "job-" + phone_like_first[1]
    assert phi.find_identifier(tok) is None


def test_a_study_runs_although_its_ids_were_first_drawn_phone_like(
    fed: InProcessFederation, phone_like_first: list[str]
) -> None:
    st = fed.submit(study(fed.names))
    rec = fed.run(st.study_id, "n")
    assert rec.status == "done", rec.error
    assert PHONE_LIKE not in st.study_id and PHONE_LIKE not in rec.job_id
    assert phone_like_first.count(PHONE_LIKE) >= 2  # the study's and the job's first draws
    log = fed.hub.ledger.service.log
    types = [json.loads(log.entry(i))["type"] for i in range(log.size())]
    assert types[-2:] == ["job_start", "job_result_release"]

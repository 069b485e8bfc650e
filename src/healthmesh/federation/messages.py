"""The messages of the hub/node protocol (pydantic): tasks, sealed envelopes, task results,
institution metadata and registrations.

Tasks have idempotent ids (:func:`task_id`: SHA-256 of job id, round and node), so the hub
may enqueue the same task twice and a node may receive it twice (delivery is at least once);
a node answers a re-delivered task with the result it already produced.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from healthmesh.errors import InvalidInput
from healthmesh.federation.identity import INSTITUTION_PATTERN, PublicRecord

M = TypeVar("M", bound=BaseModel)

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_HEX64 = r"^[0-9a-f]{64}$"
_RULE = r"^[a-z][a-z0-9-]{0,63}$"

#: what a task asks of a node: run a node method of an algorithm (``compute``), decide on a
#: study request (``study``), publish the node's catalog (``catalog-request``), take part in
#: a federated training round (``train``)
TaskKind = Literal["compute", "study", "catalog-request", "train"]
TaskStatus = Literal["ok", "refused", "error"]
InstitutionKind = Literal["hospital", "clinic", "cdc"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_model(model: type[M], data: bytes | dict[str, Any]) -> M:
    """``model`` from JSON bytes or a dict; :class:`InvalidInput` naming the offending fields
    (never their values) when it does not validate."""
    try:
        if isinstance(data, bytes):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)[:5]
        )
        raise InvalidInput(f"invalid {model.__name__}: {where}") from exc


def task_id(job_id: str, round_: int, node: str) -> str:
    """The idempotent id of the task of ``job_id``'s round ``round_`` at ``node``.

    >>> task_id("job-1", 0, "hosp-a") == task_id("job-1", 0, "hosp-a")
    True
    """
    return hashlib.sha256(f"healthmesh-task/v1\n{job_id}\n{round_}\n{node}".encode()).hexdigest()


class Task(_Model):
    """One unit of work for one node. ``args`` is JSON (numbers, strings, lists, dicts)."""

    id: str = Field(pattern=_HEX64)
    node: str = Field(pattern=INSTITUTION_PATTERN)
    kind: TaskKind
    job_id: str = Field(pattern=_ID)
    round: int = Field(default=0, ge=0)
    study_id: str | None = Field(default=None, pattern=_ID)
    algorithm: str | None = None
    method: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    #: the researcher on whose behalf the task runs (the node's privacy budget key)
    researcher: str | None = None
    issued_at: dt.datetime
    expires_at: dt.datetime

    @model_validator(mode="after")
    def _check(self) -> Task:
        if self.issued_at.tzinfo is None or self.expires_at.tzinfo is None:
            raise ValueError("issued_at and expires_at must carry a time zone")
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        if self.kind == "compute" and not (self.algorithm and self.method):
            raise ValueError("a compute task names an algorithm and a method")
        return self

    @classmethod
    def new(
        cls,
        *,
        job_id: str,
        node: str,
        kind: TaskKind,
        issued_at: dt.datetime,
        ttl_s: float,
        round_: int = 0,
        **fields: Any,
    ) -> Task:
        """A task with its idempotent id and an expiry ``ttl_s`` seconds after issue."""
        return cls(
            id=task_id(job_id, round_, node),
            node=node,
            kind=kind,
            job_id=job_id,
            round=round_,
            issued_at=issued_at,
            expires_at=issued_at + dt.timedelta(seconds=ttl_s),
            **fields,
        )


class Envelope(_Model):
    """A payload sealed to one recipient and signed by its sender (see :mod:`.sealing`)."""

    v: Literal["healthmesh-federation/v1"] = "healthmesh-federation/v1"
    sender: str = Field(pattern=INSTITUTION_PATTERN)
    sender_key_id: str
    recipient_key_id: str
    #: what the payload is bound to, e.g. the task id; part of the key derivation and signature
    context: str = Field(max_length=256)
    epk: str  # base64 ephemeral X25519 public key
    nonce: str  # base64 12-byte ChaCha20-Poly1305 nonce
    ciphertext: str  # base64 ciphertext || tag
    signature: str  # base64 Ed25519 signature of the sender


class TaskResult(_Model):
    """A node's answer to a task.

    ``ok``: ``sealed`` holds the released result (JSON) sealed to the hub with ``context`` =
    the task id. ``refused``: ``rule`` names the disclosure rule (``min-cell-size``, ...).
    ``error``: ``message`` is a public message (never patient data).
    """

    task_id: str = Field(pattern=_HEX64)
    node: str = Field(pattern=INSTITUTION_PATTERN)
    status: TaskStatus
    sealed: Envelope | None = None
    rule: str | None = Field(default=None, pattern=_RULE)
    message: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _check(self) -> TaskResult:
        if (self.status == "ok") != (self.sealed is not None):
            raise ValueError("a result carries a sealed payload exactly when its status is ok")
        if (self.status == "refused") != (self.rule is not None):
            raise ValueError("a refused result names the rule, and only a refused one")
        if self.sealed is not None and (
            self.sealed.context != self.task_id or self.sealed.sender != self.node
        ):
            raise ValueError("the sealed payload is bound to another task or node")
        return self


class InstitutionMetadata(_Model):
    """What an institution declares when it registers."""

    name: str = Field(min_length=1, max_length=200)
    kind: InstitutionKind
    #: data classification level (1 = general ... 4 = core data), per the Data Security Law
    classification: int = Field(default=2, ge=1, le=4)


RegistrationStatus = Literal["pending", "approved", "rejected", "revoked"]


class Registration(_Model):
    """The hub's answer to a registration: the institution, its key and where it stands."""

    institution: str
    key_id: str
    status: RegistrationStatus


class RegisterRequest(_Model):
    """Body of ``POST /federation/v1/register``."""

    record: PublicRecord
    metadata: InstitutionMetadata


class PollRequest(_Model):
    """Body of ``POST /federation/v1/poll``."""

    max_n: int = Field(default=10, ge=1, le=100)
    wait_s: float = Field(default=0.0, ge=0.0, le=60.0)


class PublishRequest(_Model):
    """Body of ``POST /federation/v1/publish``: a catalog entry, a study decision, ..."""

    kind: str = Field(pattern=_RULE)
    body: dict[str, Any]


class SubmitResponse(_Model):
    """Body of the answer to ``POST /federation/v1/results``: whether it was newly stored."""

    stored: bool

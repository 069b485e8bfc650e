"""What one federated training run does: the model, the strategy, local optimisation, secure
aggregation and differential privacy. Validated once at the hub, carried to the Flower apps
as JSON in the run configuration (Flower run-config values are flat scalars)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from healthmesh.errors import InvalidInput


@dataclass(frozen=True)
class LocalConfig:
    """How a client optimises locally in one round."""

    steps: int = 100
    batch_size: int = 4
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | sgd
    proximal_mu: float = 0.0  # FedProx
    weight_decay: float = 0.0  # L2 penalty on the weights (not the bias)
    dp_clip: float = 0.0  # > 0: DP-SGD per-example clipping norm
    dp_noise: float = 0.0  # DP-SGD noise multiplier



STRATEGIES = ("fedavg", "fedprox", "fedadam", "fedyogi", "fedadagrad")


class DPSpec(BaseModel):
    """Differential privacy of a run.

    ``record``: DP-SGD at every institution (each patient's record is the unit protected);
    ``client``: Flower's client-side fixed clipping + server noise (an institution's whole
    contribution is the unit). The noise is calibrated so the run spends exactly ``epsilon``
    at ``delta`` (RDP accountant); ``clip`` is the L2 clipping norm.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["record", "client"] = "record"
    epsilon: float = Field(gt=0, le=100)
    delta: float = Field(gt=0, lt=1)
    clip: float = Field(default=1.0, gt=0)


class TrainingSpec(BaseModel):
    """One training run's settings (see docs/learning.md for each field)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    task: Literal["binary", "survival"] = "binary"
    model: Literal["logreg", "mlp", "cox"] = "logreg"
    n_features: int = Field(ge=1, le=10_000)
    hidden: int = Field(default=16, ge=1, le=1024)
    strategy: Literal["fedavg", "fedprox", "fedadam", "fedyogi", "fedadagrad"] = "fedavg"
    rounds: int = Field(default=15, ge=1, le=1000)
    local_steps: int = Field(default=100, ge=1, le=100_000)
    batch_size: int = Field(default=4, ge=1)
    lr: float = Field(default=1e-3, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    weight_decay: float = Field(default=0.0, ge=0)
    proximal_mu: float = Field(default=0.01, ge=0)  # FedProx only
    server_lr: float = Field(default=0.1, gt=0)  # FedAdam/FedYogi/FedAdagrad eta
    server_tau: float = Field(default=1e-3, gt=0)
    secagg: bool = True
    secagg_shares: float = Field(default=1.0, gt=0)  # fraction (<= 1) or count of peers
    secagg_threshold: float = Field(default=0.5, gt=0)  # fraction or count to reconstruct
    secagg_clip: float = Field(default=8.0, gt=0)  # weights must lie in [-clip, clip]
    # an institution's weight (its training rows) is capped here; SecAgg+ quantises
    # weights * rows / max_weight, so a cap far above the largest node loses precision
    secagg_max_weight: float = Field(default=1000.0, gt=0)
    min_clients: int = Field(default=2, ge=2)
    dp: DPSpec | None = None
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> TrainingSpec:
        if (self.task == "survival") != (self.model == "cox"):
            raise ValueError("survival tasks use the cox model, binary tasks logreg or mlp")
        if self.dp is not None and self.dp.level == "record" and self.model == "cox":
            raise ValueError("record-level DP-SGD is not defined for Cox; use dp.level=client")
        return self

    def local(self, *, proximal: bool = False) -> LocalConfig:
        """The local optimisation settings a client uses (DP-SGD noise set by the client)."""
        return LocalConfig(
            steps=self.local_steps,
            batch_size=self.batch_size,
            lr=self.lr,
            optimizer=self.optimizer,
            weight_decay=self.weight_decay,
            proximal_mu=self.proximal_mu if proximal else 0.0,
        )


def parse_spec(data: str | dict[str, object]) -> TrainingSpec:
    """A :class:`TrainingSpec` from JSON text or a dict; InvalidInput naming the bad field."""
    try:
        if isinstance(data, str):
            return TrainingSpec.model_validate_json(data)
        return TrainingSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "spec"
        raise InvalidInput(f"training spec: {where}: {err['msg']}", location=where) from None

"""Flower strategies for a run: FedAvg, FedProx, FedAdam, FedYogi, FedAdagrad (Flower's own
legacy strategies, which SecAgg+ works with), optionally wrapped for client-level DP, plus the
bookkeeping a run reports: metrics per institution per round and time per round."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flwr.common import Metrics, NDArrays, ndarrays_to_parameters
from flwr.server.strategy import (
    DifferentialPrivacyClientSideFixedClipping,
    FedAdagrad,
    FedAdam,
    FedAvg,
    FedProx,
    FedYogi,
    Strategy,
)

from healthmesh.learning.privacy import calibrate_noise
from healthmesh.learning.spec import TrainingSpec


@dataclass
class RunLog:
    """What the server records while a run goes: filled by the strategy's callbacks."""

    round_started: list[float] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    client_noise: float | None = None
    fit_rounds: list[int] = field(default_factory=list)  # institutions aggregated per round

    def aggregate_fit_metrics(self, results: list[tuple[int, Metrics]]) -> Metrics:
        """Flower's ``fit_metrics_aggregation_fn``: called once per aggregated round."""
        self.fit_rounds.append(len(results))
        return {}

    def fit_config(self, server_round: int) -> dict[str, Any]:
        """Flower's ``on_fit_config_fn``: stamps the round start, tells clients the round."""
        self.round_started.append(time.perf_counter())
        return {"round": server_round}

    def evaluate_config(self, server_round: int) -> dict[str, Any]:
        """Flower's ``on_evaluate_config_fn``: tells clients the round."""
        return {"round": server_round}

    def aggregate_evaluation(self, results: list[tuple[int, Metrics]]) -> Metrics:
        """Flower's ``evaluate_metrics_aggregation_fn``: the unweighted mean over institutions
        (FLamby's metric) and each institution's own figure."""
        per = {str(m["institution"]): float(m["metric"]) for _, m in results}
        eps = [float(m["epsilon"]) for _, m in results if "epsilon" in m]
        mean = sum(per.values()) / len(per) if per else float("nan")
        self.evaluations.append(
            {
                "round": len(self.evaluations) + 1,
                "metric": mean,
                "per_institution": per,
                "record_epsilon": max(eps) if eps else None,
                "at": time.perf_counter(),
            }
        )
        return {"metric": mean}


def build_strategy(
    spec: TrainingSpec, initial: NDArrays, n_clients: int, log: RunLog
) -> Strategy:
    """The Flower strategy ``spec`` names, every client taking part in every round."""
    common: dict[str, Any] = {
        "fraction_fit": 1.0,
        "fraction_evaluate": 1.0,
        "min_fit_clients": spec.min_clients,
        "min_evaluate_clients": spec.min_clients,
        "min_available_clients": n_clients,
        "initial_parameters": ndarrays_to_parameters(initial),
        "on_fit_config_fn": log.fit_config,
        "on_evaluate_config_fn": log.evaluate_config,
        "evaluate_metrics_aggregation_fn": log.aggregate_evaluation,
        "fit_metrics_aggregation_fn": log.aggregate_fit_metrics,
        "accept_failures": True,
    }
    base: Strategy
    if spec.strategy == "fedavg":
        base = FedAvg(**common)
    elif spec.strategy == "fedprox":
        base = FedProx(**common, proximal_mu=spec.proximal_mu)
    else:
        cls = {"fedadam": FedAdam, "fedyogi": FedYogi, "fedadagrad": FedAdagrad}[spec.strategy]
        base = cls(**common, eta=spec.server_lr, eta_l=spec.lr, tau=spec.server_tau)
    if spec.dp is not None and spec.dp.level == "client":
        noise = calibrate_noise(
            spec.dp.epsilon,
            population=n_clients,
            sample=n_clients,
            steps=spec.rounds,
            delta=spec.dp.delta,
            poisson=False,
        )
        log.client_noise = noise
        base = DifferentialPrivacyClientSideFixedClipping(base, noise, spec.dp.clip, n_clients)
    return base

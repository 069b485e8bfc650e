"""``healthmesh learning``: train a model federatedly on prepared node datasets, list the
registry's models, print a model card. Each command parses arguments and calls the domain."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

import click

from healthmesh.errors import HealthmeshError, InvalidInput


@click.group()
def group() -> None:
    """Federated learning on Flower: training runs, model registry, model cards."""


def _registry(db: str):  # type: ignore[no-untyped-def]
    from healthmesh.db import make_engine
    from healthmesh.learning.registry import ModelRegistry

    return ModelRegistry(make_engine(db))


@group.command("train")
@click.option("--node", "nodes", multiple=True, required=True, metavar="NAME=DATA.npz",
              help="An institution and its dataset (x_train, y_train, x_test, y_test).")
@click.option("--spec", "spec_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="TrainingSpec as JSON (see docs/learning.md).")
@click.option("--name", required=True, help="Registry name of the model.")
@click.option("--study", required=True, help="Study id the run belongs to.")
@click.option("--job", required=True, help="Training job id.")
@click.option("--db", default="hub.db", show_default=True, help="Registry database (path/URL).")
@click.option("--deployment/--in-process", default=False,
              help="Flower deployment engine (SuperLink + SuperNodes) or the in-process grid.")
def train_cmd(nodes: tuple[str, ...], spec_path: str, name: str, study: str, job: str,
              db: str, deployment: bool) -> None:
    """Train on Flower (SecAgg+ unless the spec turns it off) and register the model."""
    from flwr.common.logger import FLOWER_LOGGER

    from healthmesh.learning.spec import parse_spec
    from healthmesh.learning.train import DeploymentEngine, LocalEngine

    FLOWER_LOGGER.setLevel(logging.WARNING)
    try:
        files = {}
        for item in nodes:
            inst, sep, path = item.partition("=")
            if not sep or not Path(path).is_file():
                raise InvalidInput(f"--node wants NAME=EXISTING_FILE, got {item!r}")
            files[inst] = str(Path(path).resolve())
        spec = parse_spec(Path(spec_path).read_text())
        engine = DeploymentEngine() if deployment else LocalEngine()
        import numpy as np

        with tempfile.TemporaryDirectory() as tmp:
            result = engine.run(spec.model_dump_json(), files, Path(tmp) / "out")
            with np.load(result["model_path"]) as f:
                weights = [f[f"arr_{i}"] for i in range(len(f.files))]
        model = _registry(db).register(
            name, study_id=study, job_id=job, spec=spec.model_dump(mode="json"),
            weights=weights, metric=result.get("metric"),
            per_institution=result.get("per_institution", {}),
            lineage={"institutions": {k: {} for k in files}, "privacy": result.get("privacy"),
                     "rounds": result.get("rounds")},
        )
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(json.dumps({"name": model.name, "version": model.version,
                           "digest": model.digest, "metric": model.metric,
                           "per_institution": model.per_institution,
                           "privacy": result.get("privacy")}, indent=2))


@group.command("models")
@click.option("--db", default="hub.db", show_default=True)
@click.argument("name", required=False)
def models_cmd(db: str, name: str | None) -> None:
    """List registered model versions (newest first)."""
    for v in _registry(db).versions(name):
        metric = "n/a" if v["metric"] is None else f"{v['metric']:.4f}"
        click.echo(f"{v['name']}\tv{v['version']}\t{v['kind']}\t{v['metric_name']}={metric}"
                   f"\t{v['digest']}\t{v['study_id']}/{v['job_id']}")


@group.command("card")
@click.option("--db", default="hub.db", show_default=True)
@click.option("--version", type=int, default=None, help="Default: the latest.")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of markdown.")
@click.argument("name")
def card_cmd(db: str, version: int | None, as_json: bool, name: str) -> None:
    """Print a model's card."""
    from healthmesh.learning.card import card_json, card_markdown

    try:
        model = _registry(db).get(name, version)
    except HealthmeshError as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(json.dumps(card_json(model), indent=2) if as_json else card_markdown(model),
               nl=not as_json)

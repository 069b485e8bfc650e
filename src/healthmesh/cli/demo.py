"""``healthmesh demo``: a hub and four institutions with synthetic data, one study end to end."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import threading
import time
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the demo keeps its files (default: a new temporary folder); reused if present.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=int,
    default=8000,
    show_default=True,
    help="The hub's port; the nodes use the next four (0: any free ports).",
)
@click.option("--people", type=int, default=2000, show_default=True, help="Synthetic population.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--check", is_flag=True, help="Run the study, print, and exit without serving.")
def group(data_dir: Path | None, host: str, port: int, people: int, seed: int, check: bool) -> None:
    """Start a hub and four institutions (two hospitals, a clinic, a disease-control centre)
    on SQLite with a synthetic region's data, run a study (a count, a cross-tab and a
    federated logistic regression), print the results and the URLs, and serve until Ctrl-C."""
    from healthmesh.hub.demo import describe, prepare_data, run_study, start_region

    began = time.perf_counter()
    folder = data_dir or Path(tempfile.mkdtemp(prefix="healthmesh-demo-"))

    def say(text: str) -> None:
        click.echo(f"[{time.perf_counter() - began:5.1f} s] {text}")

    prepare_data(folder, people, seed, say)
    region = start_region(folder, host, port)
    say(f"hub at {region.hub_url}; 4 nodes registered, approved, polling it over HTTP")
    try:
        outcome = run_study(region, say)
        say("study done")
        for line in describe(outcome["jobs"]):
            click.echo(line)
        click.echo("")
        click.echo(f"data directory:      {folder}")
        click.echo(f"hub:                 {region.hub_url}  (studies API, /catalog, /ledger)")
        click.echo(f"hub token endpoint:  {region.hub_url}/auth/token")
        cid, secret = region.researcher
        click.echo(f"researcher client:   {cid}  secret {secret}")
        click.echo(f"researcher token:    {region.researcher_token()}")
        for inst, node in region.nodes.items():
            creds = node.clients.add(f"demo-{int(time.time() * 1000)}", "system/*.rs")
            token = node.issue_token(creds.client_id)
            click.echo(f"{inst:<6} FHIR base:    {node.fhir_base}  token {token}")
        results = f"{region.hub_url}/studies/{outcome['study']}/results"
        click.echo(f'try: curl -H "Authorization: Bearer $TOKEN" {results}')
        say(f"ready (study {outcome['study']})")
        if check:
            return
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        click.echo("serving; press Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    finally:
        region.close()
